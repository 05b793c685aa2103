package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// TestCRLShards runs shomei-ca with CRL partitions of three certificates
// (certificates.crl_shard_size: 3, R-R5) and issues five AUTH
// certificates of one municipality: the first three go to
// auth-g1-13221.crl, the name partitions had before shards, the other two
// to auth-g1-13221-s1.crl. One in shard 1 is revoked. Its CRL, fetched
// from the certificate's own cRLDistributionPoints URL, lists it, and
// shard 0's does not; each CRL's issuingDistributionPoint, as `openssl
// crl` prints it, is the cRLDistributionPoints `openssl x509` prints for
// its certificates; and `openssl verify -crl_check`, given both CRLs,
// refuses the revoked certificate and accepts the others, while shard 0's
// CRL alone does not cover a shard 1 certificate.
func TestCRLShards(t *testing.T) {
	dir := t.TempDir()
	p := startCA(t, writeConfig(t, dir, "e2e-shards", "certificates:\n  allow_ecdsa_p256: true\n  crl_shard_size: 3\n"))
	cl := p.client(t)
	ctx := context.Background()
	work := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		path := filepath.Join(work, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	issuerPEM := writeCertPEM(t, filepath.Join(work, "auth-ca.pem"), fetchIssuer(t, p, "shomei-auth-g1").Raw)

	var certs []*x509.Certificate
	var pems []string
	card := time.Now().AddDate(8, 0, 0).Format(time.DateOnly)
	for i := range 5 {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := cl.Issue(ctx, &cav1.IssueRequest{
			Municipality: kiyose, Holder: &cav1.Holder{HolderId: fmt.Sprintf("SHARD-%d", i), DateOfBirth: "1985-01-02"},
			Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: card},
			Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr(t, key)}},
		})
		if err != nil {
			t.Fatalf("issue %d: %v", i, err)
		}
		c := resp.Certificates[0]
		cert, err := x509.ParseCertificate(c.Der)
		if err != nil {
			t.Fatal(err)
		}
		want := "http://127.0.0.1:8080/crl/auth-g1-13221.crl"
		if i >= 3 {
			want = "http://127.0.0.1:8080/crl/auth-g1-13221-s1.crl"
		}
		if len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != want {
			t.Fatalf("certificate %d: CRL distribution points %v, want %s", i, cert.CRLDistributionPoints, want)
		}
		certs, pems = append(certs, cert), append(pems, write(fmt.Sprintf("cert%d.pem", i), []byte(c.Pem)))
	}

	revoked := certs[3]
	if _, err := cl.Revoke(ctx, &cav1.RevokeRequest{Serial: revoked.SerialNumber.Text(16),
		Reason: cav1.RevocationReason_REVOCATION_REASON_CESSATION_OF_OPERATION}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	revokedAt := time.Now()

	// Each CRL from the URL in a certificate of its shard (public_url is a
	// placeholder in these tests: swap in the real address).
	crlOf := func(cert *x509.Certificate) []byte {
		t.Helper()
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
		if r.StatusCode != 200 {
			t.Fatalf("GET %s: %s %s", url, r.Status, body)
		}
		return body
	}
	var shard1 []byte
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		der := crlOf(revoked)
		if list, err := x509.ParseRevocationList(der); err == nil && len(list.RevokedCertificateEntries) == 1 {
			shard1 = der
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("shard 1's CRL does not list the revocation 60 s after it (R-R4)")
		}
	}
	t.Logf("revocation on shard 1's CRL after %v", time.Since(revokedAt).Round(time.Millisecond))
	shard0 := crlOf(certs[0])
	if shard0 == nil {
		t.Fatal("shard 0 has no CRL")
	}
	serial := strings.ToUpper(revoked.SerialNumber.Text(16))

	// openssl's reading of each CRL: the revocation on shard 1's only, and
	// each issuingDistributionPoint the names its certificates carry.
	shard1Path, shard0Path := write("shard1.crl", shard1), write("shard0.crl", shard0)
	for _, c := range []struct {
		name, path string
		cert       string // a certificate of the shard
		lists      bool
	}{{"shard 1", shard1Path, pems[4], true}, {"shard 0", shard0Path, pems[0], false}} {
		text := opensslText(t, "crl", "-inform", "DER", "-in", c.path, "-noout", "-text")
		if got := strings.Contains(text, "Serial Number: "+serial); got != c.lists {
			t.Errorf("%s's CRL lists the revoked serial %s: %t, want %t:\n%s", c.name, serial, got, c.lists, text)
		}
		idp := fullName(t, text, "X509v3 Issuing Distribution Point: critical")
		dp := fullName(t, opensslText(t, "x509", "-in", c.cert, "-noout", "-ext", "crlDistributionPoints"), "X509v3 CRL Distribution Points:")
		if idp != dp {
			t.Errorf("%s: the CRL's issuingDistributionPoint names\n%s\nand its certificates' cRLDistributionPoints\n%s", c.name, idp, dp)
		}
	}
	if idp := fullName(t, opensslText(t, "crl", "-inform", "DER", "-in", shard1Path, "-noout", "-text"), "X509v3 Issuing Distribution Point: critical"); !strings.Contains(idp, "URI:http://127.0.0.1:8080/crl/auth-g1-13221-s1.crl") ||
		!strings.Contains(idp, " CRLDP s1") {
		t.Errorf("shard 1's issuingDistributionPoint is not its own (URL -s1, CN ... CRLDP s1):\n%s", idp)
	}

	both := write("both.pem", append(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: shard0}),
		pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: shard1})...))
	shard0PEM := write("shard0.pem", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: shard0}))
	for _, c := range []struct {
		name, cert, crls, want string
		ok                     bool
	}{
		{"revoked, shard 1", pems[3], both, "certificate revoked", false},
		{"valid, shard 1", pems[4], both, ": OK", true},
		{"valid, shard 0", pems[0], both, ": OK", true},
		{"revoked, shard 0's CRL only", pems[3], shard0PEM, "different CRL scope", false},
	} {
		out, err := exec.Command("openssl", "verify", "-crl_check", "-CAfile", issuerPEM, "-CRLfile", c.crls, c.cert).CombinedOutput()
		if (err == nil) != c.ok || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: openssl verify -crl_check: %v, want %q:\n%s", c.name, err, c.want, out)
		}
	}
	p.stop(t)
	if logs := p.Log.String(); strings.Contains(logs, "SHARD-") {
		t.Errorf("the CA's log carries holder ids (R-P4):\n%s", logs)
	}
}

// opensslText runs openssl with args and returns what it printed.
func opensslText(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fullName is the "Full Name:" block openssl prints under heading: its
// URI: and DirName: names (openssl 3.0 prints the CRL's "Only User
// Certificates" on the DirName's line, after spaces).
func fullName(t *testing.T, text, heading string) string {
	t.Helper()
	_, after, ok := strings.Cut(text, heading)
	if !ok {
		t.Fatalf("no %q in:\n%s", heading, text)
	}
	var names []string
	for _, line := range regexp.MustCompile(`(?m)(URI:\S*|DirName:.*?)(?:\s{2,}|$)`).FindAllStringSubmatch(after, -1) {
		names = append(names, strings.TrimSpace(line[1]))
		if len(names) == 2 {
			break
		}
	}
	if len(names) != 2 {
		t.Fatalf("no URI and DirName under %q:\n%s", heading, text)
	}
	return strings.Join(names, "\n")
}
