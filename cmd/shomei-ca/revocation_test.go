package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// TestRevocationReachesTheCRL reports an address change for a resident with
// SIGN and AUTH and checks, with OpenSSL, that the SIGN certificate's
// partition CRL — fetched from the URL written in the certificate — lists
// it within 60 s (R-R4), and that `openssl verify -crl_check` then rejects
// SIGN and accepts AUTH.
func TestRevocationReachesTheCRL(t *testing.T) {
	dir := t.TempDir()
	p := startCA(t, writeConfig(t, dir, "e2e-revoke", ""))
	cl := p.client(t)
	ctx := context.Background()
	issued, err := cl.Issue(ctx, &cav1.IssueRequest{
		Municipality: kiyose, Holder: holder("REV-1"),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles: []*cav1.ProfileRequest{
			{Profile: cav1.Profile_PROFILE_SIGN, Csr: csr(t, rsaKey(t))},
			{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr(t, rsaKey(t))},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	signCert, authCert := issued.Certificates[0], issued.Certificates[1]
	events := cav1.NewEventsClient(p.conn(t))
	resp, err := events.ReportEvent(ctx, &cav1.ReportEventRequest{
		EventId: "move-1", MunicipalityCode: "13221", HolderId: "REV-1", Kind: cav1.EventKind_EVENT_KIND_RECORD_CHANGE,
		ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS}, Cause: cav1.ChangeCause_CHANGE_CAUSE_MOVE,
		EffectiveTime: time.Now().Format(time.RFC3339),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Revoked) != 1 || resp.Revoked[0].Serial != signCert.Serial || resp.Revoked[0].Reason != "affiliationChanged" {
		t.Fatalf("address change revoked %v; want SIGN only, affiliationChanged", resp.Revoked)
	}
	revokedAt := time.Now()

	work := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(work, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	signPEM, authPEM := write("sign.pem", []byte(signCert.Pem)), write("auth.pem", []byte(authCert.Pem))
	signIssuer := write("sign-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fetchIssuer(t, p, "shomei-sign-g1").Raw}))
	authIssuer := write("auth-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fetchIssuer(t, p, "shomei-auth-g1").Raw}))

	// Fetch the CRL from the URL in the certificate (public_url is a
	// placeholder in this test: swap in the real address).
	crlOf := func(c *cav1.Certificate) []byte {
		t.Helper()
		cert, err := x509.ParseCertificate(c.Der)
		if err != nil || len(cert.CRLDistributionPoints) != 1 {
			t.Fatalf("certificate CRL DP: %v %v", cert.CRLDistributionPoints, err)
		}
		url := strings.Replace(cert.CRLDistributionPoints[0], "127.0.0.1:8080", p.http, 1)
		r, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		body, _ := io.ReadAll(r.Body)
		if r.StatusCode == http.StatusNotFound {
			return nil // not published yet
		}
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/pkix-crl" {
			t.Fatalf("GET %s: %s %s", url, r.Status, body)
		}
		return body
	}
	var signCRL []byte
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		der := crlOf(signCert)
		list, err := x509.ParseRevocationList(der)
		if err == nil && len(list.RevokedCertificateEntries) == 1 {
			signCRL = der
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SIGN partition CRL does not list the revocation 60 s after it (R-R4): %v", err)
		}
	}
	t.Logf("revocation visible in the CRL after %v", time.Since(revokedAt).Round(time.Millisecond))

	text, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", write("sign.crl", signCRL), "-noout", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl: %v %s", err, text)
	}
	for _, want := range []string{"X509v3 Issuing Distribution Point: critical", "Affiliation Changed", "Invalidity Date",
		strings.ToUpper(signCert.Serial)} {
		if !strings.Contains(string(text), want) {
			t.Errorf("openssl crl -text lacks %q:\n%s", want, text)
		}
	}
	signCRLPEM := write("sign-crl.pem", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: signCRL}))
	authCRL := crlOf(authCert)
	if authCRL == nil {
		t.Fatal("the AUTH partition has no CRL although SIGN's was published")
	}
	authCRLPEM := write("auth-crl.pem", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: authCRL}))

	out, err := exec.Command("openssl", "verify", "-crl_check", "-CAfile", signIssuer, "-CRLfile", signCRLPEM, signPEM).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate revoked") {
		t.Errorf("openssl verify -crl_check accepted the revoked SIGN certificate: %v %s", err, out)
	}
	out, err = exec.Command("openssl", "verify", "-crl_check", "-CAfile", authIssuer, "-CRLfile", authCRLPEM, authPEM).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Errorf("openssl verify -crl_check rejected the valid AUTH certificate: %v %s", err, out)
	}
	p.stop(t)

	// After a restart the last CRLs are served at once, from the store.
	p = startCA(t, writeConfig(t, dir, "e2e-revoke", ""))
	if again := crlOf(signCert); string(again) != string(signCRL) {
		t.Errorf("after a restart the SIGN partition serves %d bytes, not the CRL published before (%d bytes)", len(again), len(signCRL))
	}
	p.stop(t)
}
