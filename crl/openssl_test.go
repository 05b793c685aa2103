package crl_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// openssl runs the openssl command, skipping the test when it is not
// installed.
func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl not installed: run make test (deploy/dev/deps.sh installs it)")
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	return string(out), err
}

// writePEM writes der as a PEM file of type typ in dir.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// opensslSerial is a serial as openssl prints it: upper-case hex, an even
// number of digits.
func opensslSerial(n *big.Int) string {
	s := fmt.Sprintf("%X", n)
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

// opensslTime is a time as openssl prints it.
func opensslTime(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format("Jan _2 15:04:05 2006 GMT")
}

// opensslEscape is a name value as openssl's one-line name printer writes
// it: bytes beyond ASCII as \XX.
func opensslEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			fmt.Fprintf(&b, `\%02X`, s[i])
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// reasonNames are openssl's names of the reason codes.
var reasonNames = map[int]string{
	keyCompromise:        "Key Compromise",
	affiliationChanged:   "Affiliation Changed",
	superseded:           "Superseded",
	cessationOfOperation: "Cessation Of Operation",
}

// TestOpenSSLText reads the CRLs with `openssl crl -text`.
func TestOpenSSLText(t *testing.T) {
	for _, f := range fixtures() {
		t.Run(f.name, func(t *testing.T) {
			req, der := sample(t, f)
			path := filepath.Join(t.TempDir(), "crl.der")
			if err := os.WriteFile(path, der, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := openssl(t, "crl", "-inform", "DER", "-in", path, "-text", "-noout")
			if err != nil {
				t.Fatalf("openssl crl: %v\n%s", err, out)
			}
			head, list, ok := strings.Cut(out, "Revoked Certificates:")
			if !ok {
				t.Fatalf("no revoked certificates:\n%s", out)
			}
			dp := f.partition.DistributionPoint
			dirName := "DirName:"
			for i, a := range dp {
				if i > 0 {
					dirName += ", "
				}
				dirName += a.Type + " = " + opensslEscape(a.Value)
			}
			for _, want := range []*regexp.Regexp{
				regexp.MustCompile(`Version 2 \(0x1\)`),
				regexp.MustCompile(`Last Update: ` + regexp.QuoteMeta(opensslTime(thisUpdate)) + `\n`),
				regexp.MustCompile(`Next Update: ` + regexp.QuoteMeta(opensslTime(nextUpdate)) + `\n`),
				regexp.MustCompile(`X509v3 CRL Number: *\n +42\n`),
				regexp.MustCompile(`X509v3 Issuing Distribution Point: critical\n +Full Name:\n +URI:` +
					regexp.QuoteMeta(f.partition.URL) + `\n +` + regexp.QuoteMeta(dirName)),
				regexp.MustCompile(`Only User Certificates`),
			} {
				if !want.MatchString(head) {
					t.Errorf("openssl output lacks %s:\n%s", want, head)
				}
			}

			// One block per entry, in ascending serial order.
			blocks := strings.Split(list, "Serial Number: ")[1:]
			if len(blocks) != len(req.Entries) {
				t.Fatalf("%d entries, want %d:\n%s", len(blocks), len(req.Entries), list)
			}
			bySerial := map[string]string{}
			var order []string
			for _, b := range blocks {
				sn, _, _ := strings.Cut(b, "\n")
				bySerial[sn] = b
				order = append(order, sn)
			}
			for i := 1; i < len(order); i++ {
				if a, b := order[i-1], order[i]; len(a) > len(b) || len(a) == len(b) && a >= b {
					t.Errorf("serial %s listed after %s", b, a)
				}
			}
			for _, e := range req.Entries {
				sn := opensslSerial(e.Serial)
				b, ok := bySerial[sn]
				if !ok {
					t.Errorf("serial %s not listed", sn)
					continue
				}
				if want := "Revocation Date: " + opensslTime(e.RevokedAt) + "\n"; !strings.Contains(b, want) {
					t.Errorf("serial %s: no %q in\n%s", sn, want, b)
				}
				reason := regexp.MustCompile(`X509v3 CRL Reason Code: *\n +(.*)\n`).FindStringSubmatch(b)
				invalidity := regexp.MustCompile(`Invalidity Date: *\n +(.*)\n`).FindStringSubmatch(b)
				if e.Reason == unspecified {
					if strings.Contains(b, "CRL entry extensions") {
						t.Errorf("serial %s (unspecified, no invalidityDate) has entry extensions:\n%s", sn, b)
					}
					continue
				}
				if reason == nil || reason[1] != reasonNames[e.Reason] {
					t.Errorf("serial %s: reason %q, want %q", sn, reason, reasonNames[e.Reason])
				}
				if invalidity == nil || invalidity[1] != opensslTime(e.InvalidityDate) {
					t.Errorf("serial %s: invalidity date %q, want %q", sn, invalidity, opensslTime(e.InvalidityDate))
				}
			}
		})
	}
}

// TestOpenSSLVerify checks with `openssl verify -crl_check` that relying
// parties match the CRL to the partition's certificates: a revoked
// certificate is refused, one of the same partition that is not on the
// CRL is accepted, and one of another partition is refused with
// "different CRL scope" (X509_V_ERR_DIFFERENT_CRL_SCOPE): openssl found the
// CRL but its issuingDistributionPoint shares no name with that
// certificate's cRLDistributionPoints.
func TestOpenSSLVerify(t *testing.T) {
	at := strconv.FormatInt(thisUpdate.Add(time.Hour).Unix(), 10)
	for _, f := range fixtures() {
		revoked := issue(t, f, f.partition)
		valid := issue(t, f, f.partition)
		elsewhere := issue(t, f, f.other)
		_, der := sample(t, f, revoked)
		dir := t.TempDir()
		issuerPEM := writePEM(t, dir, "issuer.pem", "CERTIFICATE", f.issuer.Raw)
		crlPEM := writePEM(t, dir, "crl.pem", "X509 CRL", der)

		for _, tc := range []struct {
			name string
			cert *x509.Certificate
			want string
			ok   bool
		}{
			{"revoked", revoked, "certificate revoked", false},
			{"same partition, not revoked", valid, ": OK", true},
			{"another partition", elsewhere, "different CRL scope", false},
		} {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				certPEM := writePEM(t, t.TempDir(), "cert.pem", "CERTIFICATE", tc.cert.Raw)
				out, err := openssl(t, "verify", "-attime", at, "-crl_check", "-CAfile", issuerPEM, "-CRLfile", crlPEM, certPEM)
				if (err == nil) != tc.ok || !strings.Contains(out, tc.want) {
					t.Errorf("openssl verify: %v, want %q:\n%s", err, tc.want, out)
				}
				t.Logf("openssl verify: %s", strings.TrimSpace(out))
			})
		}
	}
}

// TestOpenSSLVerifyShards checks with `openssl verify -crl_check` that the
// shards of one municipality's partition are told apart by relying
// parties (R-R5): a certificate of shard 1 revoked on shard 1's CRL is
// refused even when openssl also holds shard 0's CRL, newer and without
// it (openssl prefers the newest CRL of those it takes as covering the
// certificate: shards that shared a directoryName would each cover the
// others' certificates), and each shard's CRL alone is "different CRL
// scope" for the other shard's certificates.
func TestOpenSSLVerifyShards(t *testing.T) {
	at := strconv.FormatInt(thisUpdate.Add(2*time.Hour).Unix(), 10)
	for _, f := range fixtures() {
		inShard0 := issue(t, f, f.partition)
		inShard1 := issue(t, f, f.shard)
		req1 := request(f, revocations(inShard1.SerialNumber))
		req1.Partition = f.shard
		der1, err := crl.Build(req1)
		if err != nil {
			t.Fatal(err)
		}
		req0 := request(f, revocations(testenv.Serial()))
		req0.ThisUpdate = thisUpdate.Add(time.Hour)
		der0, err := crl.Build(req0)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		issuerPEM := writePEM(t, dir, "issuer.pem", "CERTIFICATE", f.issuer.Raw)
		shard0PEM := writePEM(t, dir, "shard0.pem", "X509 CRL", der0)
		shard1PEM := writePEM(t, dir, "shard1.pem", "X509 CRL", der1)
		both := filepath.Join(dir, "both.pem")
		b0, _ := os.ReadFile(shard0PEM)
		b1, _ := os.ReadFile(shard1PEM)
		if err := os.WriteFile(both, append(b0, b1...), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			cert *x509.Certificate
			crls string
			want string
			ok   bool
		}{
			{"shard 1 revoked, both CRLs", inShard1, both, "certificate revoked", false},
			{"shard 1 revoked, shard 0's CRL only", inShard1, shard0PEM, "different CRL scope", false},
			{"shard 0, both CRLs", inShard0, both, ": OK", true},
			{"shard 0, shard 1's CRL only", inShard0, shard1PEM, "different CRL scope", false},
		} {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				certPEM := writePEM(t, t.TempDir(), "cert.pem", "CERTIFICATE", tc.cert.Raw)
				out, err := openssl(t, "verify", "-attime", at, "-crl_check", "-CAfile", issuerPEM, "-CRLfile", tc.crls, certPEM)
				if (err == nil) != tc.ok || !strings.Contains(out, tc.want) {
					t.Errorf("openssl verify: %v, want %q:\n%s", err, tc.want, out)
				}
			})
		}
	}
}

// TestOpenSSLVerifyEmpty checks that an empty partition's CRL is accepted
// and used by openssl.
func TestOpenSSLVerifyEmpty(t *testing.T) {
	f := fixtures()[0]
	cert := issue(t, f, f.partition)
	der, err := crl.Build(request(f, nil))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out, err := openssl(t, "verify", "-attime", strconv.FormatInt(thisUpdate.Add(time.Hour).Unix(), 10), "-crl_check",
		"-CAfile", writePEM(t, dir, "issuer.pem", "CERTIFICATE", f.issuer.Raw),
		"-CRLfile", writePEM(t, dir, "crl.pem", "X509 CRL", der),
		writePEM(t, dir, "cert.pem", "CERTIFICATE", cert.Raw))
	if err != nil || !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify: %v\n%s", err, out)
	}
}

// TestOpenSSLLarge builds a 100,000-entry CRL signed by an RSA-2048 key in
// SoftHSM2, as the CA does, and has Go's parser and `openssl crl` read it
// and verify its signature. (A 1,000,000-entry CRL passes too, but takes
// openssl seconds of CPU; BenchmarkPartitionSet builds and checks those.)
func TestOpenSSLLarge(t *testing.T) {
	f := hsmIssuer(t)
	req := request(f, seededEntries(100_000, 'L'))
	der, err := crl.Build(req)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("ParseRevocationList: %v", err)
	}
	if err := rl.CheckSignatureFrom(f.issuer); err != nil {
		t.Errorf("CheckSignatureFrom: %v", err)
	}
	checkEntries(t, rl, req.Entries)
	if err := crl.Check(der, req); err != nil {
		t.Errorf("Check: %v", err)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "crl.der")
	if err := os.WriteFile(path, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := openssl(t, "crl", "-inform", "DER", "-in", path, "-noout",
		"-CAfile", writePEM(t, dir, "issuer.pem", "CERTIFICATE", f.issuer.Raw))
	if err != nil || !strings.Contains(out, "verify OK") {
		t.Errorf("openssl crl: %v\n%s", err, out)
	}
}
