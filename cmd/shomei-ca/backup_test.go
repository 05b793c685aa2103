package main

import (
	"context"
	"crypto/x509"
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/store"
)

// Issue 11, done-when 5: a backup taken with shomeictl while a client
// issues through gRPC verifies offline, restores to a new store path, and
// a CA on it (the real binary, the same HSM token) answers OCSP "good" or
// "revoked" for every certificate it held, as the store says, and issues
// with the same issuers.
func TestBackupRestoreUnderIssuance(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "e2e-backup", "")
	p := startCA(t, config)
	client := p.client(t)
	ctx := context.Background()

	var mu sync.Mutex
	var certs []*cav1.Certificate
	revoked := map[string]bool{}
	for i := range 4 {
		sign, auth := issuePair(t, client, fmt.Sprintf("BACKUP-%d", i))
		certs = append(certs, sign, auth)
	}
	if _, err := client.Revoke(ctx, &cav1.RevokeRequest{Serial: certs[0].Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	revoked[certs[0].Serial] = true
	before := len(certs)

	// The load: a client issuing through gRPC all through the backup.
	stop := make(chan struct{})
	var load sync.WaitGroup
	load.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			sign, auth := issuePair(t, client, fmt.Sprintf("LOAD-%d", i))
			mu.Lock()
			certs = append(certs, sign, auth)
			mu.Unlock()
		}
	})
	time.Sleep(200 * time.Millisecond) // let the load start; not a timing assertion
	backup := filepath.Join(dir, "shomei.backup")
	out, err := shomeictl(config, "backup", "--out", backup, "--ca", p.grpc, "--operator", "alice")
	close(stop)
	load.Wait()
	if err != nil || !strings.Contains(out, "backup written to "+backup) {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v; want mode 0600", fi, err)
	}
	if out, err := shomeictl(config, "backup", "--out", backup, "--ca", p.grpc, "--operator", "alice"); err == nil {
		t.Fatalf("a backup over an existing file was written:\n%s", out)
	}
	if out, err := shomeictl(config, "backup", "verify", backup); err != nil || !strings.Contains(out, "verified") {
		t.Fatalf("backup verify: %v\n%s", err, out)
	}
	restoredPath := filepath.Join(dir, "restored", "shomei.db")
	if out, err := shomeictl(config, "backup", "restore", backup, "--store", restoredPath); err != nil {
		t.Fatalf("backup restore: %v\n%s", err, out)
	}
	if out, err := shomeictl(config, "backup", "restore", backup, "--store", restoredPath); err == nil {
		t.Fatalf("a restore over an existing store was done:\n%s", out)
	}
	issuers := map[cav1.Profile]*x509.Certificate{cav1.Profile_PROFILE_SIGN: fetchIssuer(t, p, "shomei-sign-g1"),
		cav1.Profile_PROFILE_AUTH: fetchIssuer(t, p, "shomei-auth-g1")}
	p.stop(t)

	// What the restored store holds.
	held := map[string]*storev1.Certificate{}
	st, err := store.Open(restoredPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.ForEachCertificate(func(c *storev1.Certificate) error {
		held[ca.SerialHex(c.Serial)] = c
		return nil
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs[:before] {
		if held[c.Serial] == nil {
			t.Fatalf("certificate %s, issued before the backup began, is not in it", c.Serial)
		}
	}
	t.Logf("the backup holds %d certificates; %d were issued by the end of the load", len(held), len(certs))

	// The restored CA: same token, new store path. The HSM witnessed the
	// original log further than the backup goes: the operator accepts the
	// rollback, audited, then the CA starts.
	conf, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(dir, "restored.yaml")
	if err := os.WriteFile(restored, []byte(strings.Replace(string(conf), "path: shomei.db", "path: restored/shomei.db", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := shomeictl(restored, "audit", "verify", "--offline", "--accept-rollback", "--operator", "alice"); err != nil {
		t.Fatalf("accepting the restored backup's rollback: %v\n%s", err, out)
	}
	p2 := startCA(t, restored)
	defer p2.stop(t)
	httpc := &http.Client{Timeout: 10 * time.Second}
	checked := 0
	for _, c := range certs {
		rec := held[c.Serial]
		if rec == nil {
			continue // issued after the snapshot
		}
		want := ocsp.Good
		if rec.Revocation != nil {
			want = ocsp.Revoked
		}
		if revoked[c.Serial] != (want == ocsp.Revoked) {
			t.Fatalf("certificate %s: revoked %v before the backup, the restored store says %v", c.Serial, revoked[c.Serial], rec.Revocation)
		}
		got, err := askOCSP(httpc, p2.http, c, issuers[c.Profile])
		if err != nil || got != want {
			t.Fatalf("OCSP of %s from the restored CA: %v, %v; want %v", c.Serial, got, err, want)
		}
		checked++
	}
	if checked < before {
		t.Fatalf("OCSP checked %d certificates", checked)
	}
	// It issues with the same issuers.
	sign, _ := issuePair(t, p2.client(t), "AFTER-RESTORE")
	cert, err := x509.ParseCertificate(sign.Der)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(issuers[cav1.Profile_PROFILE_SIGN]); err != nil {
		t.Fatalf("the restored CA's certificate does not verify with the original issuer: %v", err)
	}
}

// shomeictl notices prints the CSV of a municipality's certificates whose
// renewal window is open or opens soon: a card expiring in 60 days caps
// its certificates there (R-V5), so their window is open (R-V3); a holder
// whose card runs 8 years is not listed, nor is another municipality's.
func TestNoticesCSV(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "e2e-notices", "")
	p := startCA(t, config)
	defer p.stop(t)
	client := p.client(t)
	soon := time.Now().AddDate(0, 0, 60).Format(time.DateOnly)
	due, err := client.Issue(context.Background(), &cav1.IssueRequest{Municipality: kiyose, Holder: holder("NOTICE-DUE"),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: soon},
		Profiles:    bothProfiles(t)})
	if err != nil {
		t.Fatal(err)
	}
	issuePair(t, client, "NOTICE-LATER")
	out, err := shomeictl(config, "notices", "--municipality", "13221", "--within", "3mo", "--ca", p.grpc, "--operator", "alice")
	if err != nil {
		t.Fatalf("notices: %v\n%s", err, out)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 3 || strings.Join(rows[0], ",") != "serial,holder_id,profile,expiry,window_opens" {
		t.Fatalf("notices CSV: %v\n%s", err, out)
	}
	for i, row := range rows[1:] {
		c := due.Certificates[0]
		if row[2] == "auth" {
			c = due.Certificates[1]
		}
		if row[0] != c.Serial || row[1] != "NOTICE-DUE" || !strings.HasPrefix(row[3], soon+"T23:59:59+09:00") || row[4] > row[3] {
			t.Fatalf("notice %d: %v; want %s of NOTICE-DUE expiring %s", i, row, c.Serial, soon)
		}
	}
	if out, err := shomeictl(config, "notices", "--municipality", "1322", "--within", "3mo", "--ca", p.grpc, "--operator", "alice"); err == nil ||
		!strings.Contains(out, "municipality.code") {
		t.Fatalf("notices for a bad code: %v\n%s", err, out)
	}
	if strings.Contains(p.Log.String(), "NOTICE-") {
		t.Errorf("the CA logged a holder id:\n%s", p.Log)
	}
}
