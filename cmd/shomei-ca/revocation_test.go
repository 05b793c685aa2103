package main

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// TestRevocationReachesOCSPAndTheCRL reports an address change for a
// resident with SIGN and AUTH and checks, with OpenSSL, that `openssl ocsp`
// (POST, and GET of a request made with -reqout) says good for both before
// and, within 1 s after, revoked (affiliationChanged) for SIGN and still good
// for AUTH; that the SIGN certificate's partition CRL — fetched from the URL
// written in the certificate — lists it within 60 s (R-R4); and that
// `openssl verify -crl_check` then rejects SIGN and accepts AUTH.
func TestRevocationReachesOCSPAndTheCRL(t *testing.T) {
	dir := t.TempDir()
	p := startCA(t, writeConfig(t, dir, "e2e-revoke", ""))
	cl := p.client(t)
	ctx := context.Background()
	signCert, authCert := issuePair(t, cl, "REV-1")
	work := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(work, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	signPEM, authPEM := write("sign.pem", []byte(signCert.Pem)), write("auth.pem", []byte(authCert.Pem))
	signIssuer := writeCertPEM(t, filepath.Join(work, "sign-ca.pem"), fetchIssuer(t, p, "shomei-sign-g1").Raw)
	authIssuer := writeCertPEM(t, filepath.Join(work, "auth-ca.pem"), fetchIssuer(t, p, "shomei-auth-g1").Raw)

	ocspURL := ocspURLOf(t, p, signCert)
	for _, c := range []struct {
		name, cert, issuer string
	}{{"SIGN", signPEM, signIssuer}, {"AUTH", authPEM, authIssuer}} {
		for _, method := range []string{"POST", "GET"} {
			if got := ocspStatus(t, work, method, ocspURL, c.issuer, c.cert); got != "good" {
				t.Errorf("before the event, openssl ocsp (%s) says %s is %q, want good", method, c.name, got)
			}
		}
	}

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

	// R-R4: OCSP within 1 s.
	for {
		got := ocspStatus(t, work, "POST", ocspURL, signIssuer, signPEM)
		if got == "revoked affiliationChanged" {
			t.Logf("revocation visible in OCSP after %v", time.Since(revokedAt).Round(time.Millisecond))
			break
		}
		if time.Since(revokedAt) > time.Second {
			t.Fatalf("1 s after the address change, openssl ocsp says SIGN is %q, want revoked affiliationChanged (R-R4)", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := ocspStatus(t, work, "GET", ocspURL, signIssuer, signPEM); got != "revoked affiliationChanged" {
		t.Errorf("openssl ocsp (GET) says SIGN is %q after the address change, want revoked affiliationChanged", got)
	}
	for _, method := range []string{"POST", "GET"} {
		if got := ocspStatus(t, work, method, ocspURL, authIssuer, authPEM); got != "good" {
			t.Errorf("openssl ocsp (%s) says AUTH is %q after the address change, want good (R-R1 keeps it)", method, got)
		}
	}

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
	// The freshness of both is measured (R-R4).
	r, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{`shomei_revocation_visible_seconds_count{via="ocsp"} 1`, `shomei_revocation_visible_seconds_count{via="crl"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	p.stop(t)

	// After a restart the last CRLs are served at once, from the store.
	p = startCA(t, writeConfig(t, dir, "e2e-revoke", ""))
	if again := crlOf(signCert); string(again) != string(signCRL) {
		t.Errorf("after a restart the SIGN partition serves %d bytes, not the CRL published before (%d bytes)", len(again), len(signCRL))
	}
	p.stop(t)
}

// ocspURLOf is the OCSP URL in c's authorityInfoAccess, pointed at the
// test's CA (public_url is a placeholder in these tests).
func ocspURLOf(t *testing.T, p *caProc, c *cav1.Certificate) string {
	t.Helper()
	cert, err := x509.ParseCertificate(c.Der)
	if err != nil || len(cert.OCSPServer) != 1 {
		t.Fatalf("certificate OCSP URL: %v %v", cert.OCSPServer, err)
	}
	return strings.Replace(cert.OCSPServer[0], "127.0.0.1:8080", p.http, 1)
}

// ocspStatus asks about certPEM with openssl ocsp — POST to url, or GET:
// the request written with -reqout, fetched with curl from
// url/<base64>, and the response checked with -respin — and returns
// "good", "unknown", "revoked <reason>", "error: <openssl's words>" for
// an unsigned error response (unauthorized, tryLater), or fails the test. The response
// must verify against the issuer (a delegated responder it certified).
func ocspStatus(t *testing.T, work, method, url, issuerPEM, certPEM string) string {
	t.Helper()
	args := []string{"ocsp", "-issuer", issuerPEM, "-cert", certPEM, "-CAfile", issuerPEM, "-no_nonce"}
	if method == "POST" {
		args = append(args, "-url", url)
	} else {
		req := filepath.Join(work, "req.der")
		if out, err := exec.Command("openssl", "ocsp", "-issuer", issuerPEM, "-cert", certPEM, "-no_nonce", "-reqout", req).CombinedOutput(); err != nil {
			t.Fatalf("openssl ocsp -reqout: %v %s", err, out)
		}
		der, err := os.ReadFile(req)
		if err != nil {
			t.Fatal(err)
		}
		resp := filepath.Join(work, "resp.der")
		get := url + "/" + neturl.PathEscape(base64.StdEncoding.EncodeToString(der))
		if out, err := exec.Command("curl", "-sSf", "-o", resp, get).CombinedOutput(); err != nil {
			t.Fatalf("curl %s: %v %s", get, err, out)
		}
		args = append(args, "-respin", resp)
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if strings.Contains(string(out), "Responder Error: ") && err != nil {
		// An unsigned error response (unauthorized, tryLater, …): what
		// openssl says of it, for the caller to judge.
		return "error: " + strings.TrimSpace(string(out))
	}
	if err != nil || !strings.Contains(string(out), "Response verify OK") {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var status, reason string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, certPEM+": "); ok {
			status = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Reason: "); ok {
			reason = v
		}
	}
	if status == "" {
		t.Fatalf("openssl ocsp printed no status for %s:\n%s", certPEM, out)
	}
	if reason != "" {
		status += " " + reason
	}
	return status
}
