package main

import (
	"context"
	"testing"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/store/engine"
	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/pg"
)

// TestSharedStoreOpensSealedLog: a PostgreSQL store whose audit log was
// left sealed in the HSM's witness (a bbolt CA's clean stop before
// shomeictl store migrate, an offline command) gets a CA that issues
// while another process holds the lead. The CA opens the sealed log before
// it serves, so that what it appends before it leads is not "appended
// after the log was sealed": once it leads it signs checkpoints, and it
// starts again on the store (R-K3). Found by shomei-bench scale, whose
// preload sealed such a log: the CA issued before its leader's first
// checkpoint, could never sign one, and refused the store at its next
// start.
func TestSharedStoreOpensSealedLog(t *testing.T) {
	token, err := testenv.Token(testDir, "e2e-sealed-shared")
	if err != nil {
		t.Fatal(err)
	}
	dsn := pg.Database(t)
	conf, err := testenv.WriteCAPostgres(t.TempDir(), token, "", dsn)
	if err != nil {
		t.Fatal(err)
	}
	initStore(t, conf)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sealAuditLog(ctx, t, conf)

	// Another process leads: this CA serves as a follower and issues.
	other, err := store.OpenPostgres(dsn, store.Options{}, engine.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lease, err := other.Lead(ctx, leaseName)
	if err != nil {
		t.Fatal(err)
	}
	p := startCA(t, conf)
	if isLeader(t, p) {
		t.Fatal("the CA leads while another process holds the lease")
	}
	_, err = p.client(t).Issue(ctx, &cav1.IssueRequest{Municipality: kiyose, Holder: holder("SEALED-1"),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles:    bothProfiles(t)})
	if err != nil {
		t.Fatal(err)
	}
	// The other process goes; this one leads and signs its checkpoints.
	lease.Release()
	for deadline := time.Now().Add(30 * time.Second); !isLeader(t, p); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the CA did not lead within 30 s of the lease's release\n%s", p.Log)
		}
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, p.Log)
	}
	// It starts again: the log verifies against the HSM's witness.
	again := startCA(t, conf)
	if _, err := again.client(t).Issue(ctx, &cav1.IssueRequest{Municipality: kiyose, Holder: holder("SEALED-2"),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles:    bothProfiles(t)}); err != nil {
		t.Fatal(err)
	}
}

// sealAuditLog signs a checkpoint of conf's audit log and seals the log
// there in the HSM's witness, as an offline writer with the HSM leaves it.
func sealAuditLog(ctx context.Context, t *testing.T, conf string) {
	t.Helper()
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cfg.Store.Open(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tok, err := cfg.OpenHSM()
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	key, err := audit.Key(ctx, tok, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := audit.NewCheckpointer(audit.CheckpointerConfig{Store: st, Signer: key, Witness: tok})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if w, err := audit.ReadWitness(ctx, tok, key.Public()); err != nil || !w.Sealed {
		t.Fatalf("the witness after sealing: %v, %v", w, err)
	}
}
