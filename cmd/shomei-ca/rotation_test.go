package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// TestKeyRotationUnderLoad: issue 11 "done when" 1, through the real
// binaries. While a municipal client issues SIGN certificates without
// pause, operator alice proposes `keys rotate --profile sign` and operator
// bob approves it: no request fails; certificates issued before and after
// verify with openssl against their own generation only; a relying party
// holding only the old issuer verifies a new certificate through the
// NewWithOld link certificate (openssl, and Go's x509.Verify); both
// generations' CRLs and OCSP answer for their own certificates; and
// retiring the old generation is refused while its certificates are
// unexpired (R-K1).
func TestKeyRotationUnderLoad(t *testing.T) {
	dir := t.TempDir()
	conf, _, _ := writeOperatorsConfig(t, dir, "e2e-rotation")
	p := startCA(t, conf)
	ca := cav1.NewCertificateAuthorityClient(testenv.Dial(t, p.grpc, operatorsMunicipalToken))
	ctx := context.Background()
	var holders atomic.Int64
	issueSign := func() (*cav1.Certificate, error) {
		id := holders.Add(1)
		out, err := ca.Issue(ctx, &cav1.IssueRequest{Municipality: kiyose, Holder: holder("ROT-" + strconv.FormatInt(id, 10)),
			Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
			Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_SIGN, Csr: csr(t, rsaKey(t))}}})
		if err != nil {
			return nil, err
		}
		return out.Certificates[0], nil
	}
	before, err := issueSign()
	if err != nil {
		t.Fatal(err)
	}

	// A client issuing without pause, through the rotation.
	var (
		load     sync.WaitGroup
		stopLoad = make(chan struct{})
		mu       sync.Mutex
		issued   []*cav1.Certificate
		failures []error
	)
	for range 2 {
		load.Add(1)
		go func() {
			defer load.Done()
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				c, err := issueSign()
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else {
					issued = append(issued, c)
				}
				mu.Unlock()
			}
		}()
	}

	as := func(token string, args ...string) (string, error) {
		return shomeictl(conf, append(args, "--ca", p.grpc, "--token-file", filepath.Join(dir, token))...)
	}
	out, err := as("alice.token", "keys", "rotate", "--profile", "sign", "--reason", "e2e rotation under load")
	if err != nil {
		t.Fatalf("alice: keys rotate: %v\n%s", err, out)
	}
	m := proposalID.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keys rotate printed no proposal id:\n%s", out)
	}
	id := m[1]
	if out, err := as("alice.token", "approvals", "approve", id); err == nil {
		t.Errorf("alice approved her own proposal:\n%s", out)
	}
	if out, err := as("bob.token", "approvals", "approve", id); err != nil {
		t.Fatalf("bob: approvals approve %s: %v\n%s", id, err, out)
	}

	// Issuance moves to generation 2 without a restart.
	var after *cav1.Certificate
	for deadline := time.Now().Add(30 * time.Second); after == nil; time.Sleep(50 * time.Millisecond) {
		c, err := issueSign()
		if err != nil {
			t.Fatalf("issuance after the rotation: %v", err)
		}
		if !bytes.Equal(akiOf(t, c), akiOf(t, before)) {
			after = c
		}
		if time.Now().After(deadline) {
			t.Fatal("issuance still uses the old generation 30 s after the rotation was approved")
		}
	}
	time.Sleep(200 * time.Millisecond) // some load on the new generation too
	close(stopLoad)
	load.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during the rotation; first: %v", len(failures), len(failures)+len(issued), failures[0])
	}
	t.Logf("%d certificates issued during the rotation", len(issued))

	// The issuers and the link certificates, as relying parties get them.
	work := t.TempDir()
	if out, err := as("alice.token", "issuers", "export", "--out", work); err != nil {
		t.Fatalf("issuers export: %v\n%s", err, out)
	}
	g1, g2, link := filepath.Join(work, "shomei-sign-g1.pem"), filepath.Join(work, "shomei-sign-g2.pem"), filepath.Join(work, "shomei-sign-g2-by-g1.pem")
	for _, f := range []string{g1, g2, link, filepath.Join(work, "shomei-sign-g1-by-g2.pem")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("issuers export: %v", err)
		}
	}
	beforePEM := writeCertPEM(t, filepath.Join(work, "before.pem"), before.Der)
	afterPEM := writeCertPEM(t, filepath.Join(work, "after.pem"), after.Der)
	verify := func(args ...string) (string, bool) {
		out, err := exec.Command("openssl", append([]string{"verify"}, args...)...).CombinedOutput()
		return string(out), err == nil && strings.Contains(string(out), ": OK")
	}
	for _, c := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"before against g1", []string{"-CAfile", g1, beforePEM}, true},
		{"after against g2", []string{"-CAfile", g2, afterPEM}, true},
		{"after against g1 alone", []string{"-CAfile", g1, afterPEM}, false},
		{"before against g2 alone", []string{"-CAfile", g2, beforePEM}, false},
		{"after, trusting only g1, through the link", []string{"-CAfile", g1, "-untrusted", link, afterPEM}, true},
		{"the new issuer, trusting only g1, through the link", []string{"-partial_chain", "-CAfile", g1, link}, true},
	} {
		if out, ok := verify(c.args...); ok != c.ok {
			t.Errorf("openssl verify, %s: ok=%v, want %v\n%s", c.name, ok, c.ok, out)
		}
	}
	// Go's verifier: the new certificate chains to g2, and the link is g2's
	// key signed by g1. (Go's x509.Verify does not apply RFC 5280
	// §6.1.4(l) — a self-issued intermediate does not count against
	// pathLenConstraint — so it refuses leaf ← link ← g1 under g1's
	// pathLen 0; openssl above applies it. docs/operations.md says so.)
	roots := x509.NewCertPool()
	roots.AddCert(readCertPEM(t, g2))
	afterCert, _ := x509.ParseCertificate(after.Der)
	if _, err := afterCert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("x509.Verify of a new certificate against g2: %v", err)
	}
	linkCert, g1Cert, g2Cert := readCertPEM(t, link), readCertPEM(t, g1), readCertPEM(t, g2)
	if err := linkCert.CheckSignatureFrom(g1Cert); err != nil || !bytes.Equal(linkCert.RawSubjectPublicKeyInfo, g2Cert.RawSubjectPublicKeyInfo) {
		t.Errorf("the NewWithOld link is not g2's key signed by g1: %v", err)
	}
	if err := afterCert.CheckSignatureFrom(linkCert); err != nil {
		t.Errorf("a new certificate does not verify under the link: %v", err)
	}

	// Both generations answer OCSP, and publish CRLs, for their own.
	url := "http://" + p.http + "/ocsp"
	if got := ocspStatus(t, work, "POST", url, g1, beforePEM); got != "good" {
		t.Errorf("OCSP for the g1 certificate: %q", got)
	}
	// g2's delegated responder is certified by the generations' sync that
	// the rotation wakes, which may still be running under load: until it
	// is, the responder does not know g2 (unauthorized). It must come.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got := ocspStatus(t, work, "POST", url, g2, afterPEM)
		if got == "good" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("OCSP for the g2 certificate 15 s after the rotation: %q", got)
			break
		}
	}
	for _, c := range []*cav1.Certificate{before, after} {
		if _, err := ca.Revoke(ctx, &cav1.RevokeRequest{Serial: c.Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_CESSATION_OF_OPERATION,
			EffectiveTime: time.Now().Format(time.RFC3339)}); err != nil {
			t.Fatalf("Revoke %s: %v", c.Serial, err)
		}
	}
	for _, c := range []struct {
		cert        *cav1.Certificate
		issuer, pem string
	}{{before, g1, beforePEM}, {after, g2, afterPEM}} {
		crlPEM := waitCRLListing(t, p, c.cert, work)
		if out, _ := verify("-crl_check", "-CAfile", c.issuer, "-CRLfile", crlPEM, c.pem); !strings.Contains(out, "certificate revoked") {
			t.Errorf("openssl verify -crl_check of %s against its own generation's CRL: %s", c.cert.Serial, out)
		}
		if got := ocspStatus(t, work, "POST", url, c.issuer, c.pem); !strings.HasPrefix(got, "revoked") {
			t.Errorf("OCSP for %s after its revocation: %q", c.cert.Serial, got)
		}
	}

	// The old generation still has unexpired certificates: no retirement.
	if out, err := as("alice.token", "keys", "retire", "--profile", "sign", "--generation", "1", "--reason", "too early"); err == nil ||
		!strings.Contains(out, "unexpired") {
		t.Errorf("keys retire of sign-g1 with unexpired certificates: %v\n%s", err, out)
	}
	out, err = as("bob.token", "keys", "list")
	if err != nil || !regexp.MustCompile(`sign\s+1\s+SUPERSEDED`).MatchString(out) || !regexp.MustCompile(`sign\s+2\s+ACTIVE`).MatchString(out) {
		t.Errorf("keys list after the rotation: %v\n%s", err, out)
	}
	p.stop(t)
}

// akiOf is c's authorityKeyIdentifier.
func akiOf(t *testing.T, c *cav1.Certificate) []byte {
	t.Helper()
	cert, err := x509.ParseCertificate(c.Der)
	if err != nil {
		t.Fatal(err)
	}
	return cert.AuthorityKeyId
}

// readCertPEM reads one PEM certificate.
func readCertPEM(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// waitCRLListing waits until the CRL at c's distribution point lists c
// and returns it written as PEM under work.
func waitCRLListing(t *testing.T, p *caProc, c *cav1.Certificate, work string) string {
	t.Helper()
	cert, err := x509.ParseCertificate(c.Der)
	if err != nil || len(cert.CRLDistributionPoints) != 1 {
		t.Fatalf("certificate CRL DP: %v %v", cert.CRLDistributionPoints, err)
	}
	url := strings.Replace(cert.CRLDistributionPoints[0], "127.0.0.1:8080", p.http, 1)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			if list, err := x509.ParseRevocationList(body); err == nil {
				for _, e := range list.RevokedCertificateEntries {
					if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
						path := filepath.Join(work, c.Serial+".crl.pem")
						if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: body}), 0o600); err != nil {
							t.Fatal(err)
						}
						return path
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CRL at %s does not list %s 60 s after its revocation", url, c.Serial)
		}
	}
}
