package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/pg"
)

// TestStoreMigrate: `shomeictl store migrate` copies a stopped CA's bbolt
// store into an empty PostgreSQL database, with progress, and checks the
// copy; the CA then starts on PostgreSQL with the same token — its audit
// log verifies against the HSM's witness — and answers for the
// certificates issued and revoked before, while psql, a client nobody
// here wrote, sees the records in PostgreSQL's tables. Migrating into a
// database that is not empty is refused and changes nothing.
func TestStoreMigrate(t *testing.T) {
	dir := t.TempDir()
	token, err := testenv.Token(testDir, "e2e-migrate")
	if err != nil {
		t.Fatal(err)
	}
	boltConf := filepath.Join(dir, "shomei.yaml")
	if _, err := testenv.WriteFile(dir, "shomei.yaml", testenv.CAConfig(token, "")); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WritePIN(dir); err != nil {
		t.Fatal(err)
	}
	p := startCA(t, boltConf)
	cl := p.client(t)
	ctx := context.Background()
	var signs []*cav1.Certificate
	for i := range 5 {
		sign, _ := issuePair(t, cl, fmt.Sprintf("MIG-%d", i))
		signs = append(signs, sign)
	}
	if _, err := cav1.NewEventsClient(p.conn(t)).ReportEvent(ctx, &cav1.ReportEventRequest{
		EventId: "move-mig", MunicipalityCode: "13221", HolderId: "MIG-0", Kind: cav1.EventKind_EVENT_KIND_RECORD_CHANGE,
		ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS}, Cause: cav1.ChangeCause_CHANGE_CAUSE_MOVE,
		EffectiveTime: time.Now().Format(time.RFC3339),
	}); err != nil {
		t.Fatal(err)
	}
	p.stop(t)

	dsn := pg.Database(t)
	pgDir := t.TempDir()
	pgConf, err := testenv.WriteCAPostgres(pgDir, token, "", dsn)
	if err != nil {
		t.Fatal(err)
	}
	out, err := shomeictl(pgConf, "store", "migrate", "--from", filepath.Join(dir, "shomei.db"))
	if err != nil {
		t.Fatalf("store migrate: %v\n%s", err, out)
	}
	for _, want := range []string{"migrate: ", "records (100%)", "10 certificates", "audit chain verifies"} {
		if !strings.Contains(out, want) {
			t.Errorf("store migrate output lacks %q:\n%s", want, out)
		}
	}
	db := dsn[strings.Index(dsn, "dbname=")+len("dbname=") : strings.LastIndex(dsn, " ")]
	if got, err := pg.SharedCluster(t).Psql(db, "SELECT count(*) FROM kv_certs"); err != nil || got != "10" {
		t.Errorf("psql: kv_certs holds %q (%v), want 10", got, err)
	}
	// Again into the same database: refused, nothing changes.
	if out, err := shomeictl(pgConf, "store", "migrate", "--from", filepath.Join(dir, "shomei.db")); err == nil || !strings.Contains(out, "not empty") && !strings.Contains(out, "has its issuers") {
		t.Errorf("a second migrate into the same database: %v\n%s\nwant a refusal", err, out)
	}

	q := startCA(t, pgConf)
	qcl := q.client(t)
	for i, sign := range signs {
		got, err := qcl.GetCertificate(ctx, &cav1.GetCertificateRequest{Serial: sign.Serial})
		if err != nil {
			t.Fatalf("GetCertificate %s after the migration: %v", sign.Serial, err)
		}
		revoked := got.GetCertificate().GetStatus() == cav1.Status_STATUS_REVOKED
		if revoked != (i == 0) {
			t.Errorf("certificate %d: revoked %v after the migration, want %v", i, revoked, i == 0)
		}
	}
	// And it issues on.
	issuePair(t, qcl, "MIG-NEW")
	q.stop(t)
}
