package profile_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/internal/x509enc"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

func TestCRLDistributionPointName(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  x509enc.DN
		want string
	}{
		{"sign", profile.CRLDistributionPointName(sign, "東京都", "清瀬市", 0),
			"C=JP, O=JPKI, OU=JPKI for digital signature, OU=CRL Distribution Points, OU=東京都, CN=清瀬市 CRLDP"},
		{"auth", profile.CRLDistributionPointName(auth, "Tokyo-to", "Kiyose-shi", 0),
			"C=JP, O=JPKI, OU=JPKI for user authentication, OU=CRL Distribution Points, OU=Tokyo-to, CN=Kiyose-shi CRLDP"},
		// Shards from 1 on have names of their own (R-R5); shard 0 keeps
		// the name from before shards.
		{"sign shard 1", profile.CRLDistributionPointName(sign, "東京都", "清瀬市", 1),
			"C=JP, O=JPKI, OU=JPKI for digital signature, OU=CRL Distribution Points, OU=東京都, CN=清瀬市 CRLDP s1"},
		{"auth shard 4294967295", profile.CRLDistributionPointName(auth, "東京都", "清瀬市", 4294967295),
			"C=JP, O=JPKI, OU=JPKI for user authentication, OU=CRL Distribution Points, OU=東京都, CN=清瀬市 CRLDP s4294967295"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s := tc.got.String(); s != tc.want {
				t.Errorf("got %s, want %s", s, tc.want)
			}
			if err := tc.got.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
	if got := profile.DefaultIssuerAltName().String(); got != "C=JP, O=公的個人認証サービス" {
		t.Errorf("DefaultIssuerAltName = %s", got)
	}
}

// Extension OIDs in R-P1's order.
const (
	aki  = "2.5.29.35"
	ku   = "2.5.29.15"
	san  = "2.5.29.17"
	ian  = "2.5.29.18"
	crld = "2.5.29.31"
	cp   = "2.5.29.32"
	ski  = "2.5.29.14"
	aia  = "1.3.6.1.5.5.7.1.1"
)

// TestIssue builds certificates of both profiles, signs them with software
// issuers, and checks them with Check, Go's parser and verifier, and zlint.
func TestIssue(t *testing.T) {
	rsaSign := newIssuer(t, sign, key("ca"))
	rsaAuth := newIssuer(t, auth, key("ca"))
	noOCSP := config()
	noOCSP.OCSPURL = ""
	p256Holder := authRequest()
	p256Holder.PublicKey = key("holder-p256").Public()

	for _, tc := range []struct {
		name      string
		issuer    *x509.Certificate
		signer    crypto.Signer
		cfg       profile.Config
		req       profile.Request
		wantExts  []string
		wantKU    x509.KeyUsage
		wantAlg   x509.SignatureAlgorithm
		wantOID   string
		wantNames string // subject as RFC 4514 prints it
	}{
		{"sign", rsaSign, key("ca"), config(), signRequest(),
			[]string{aki, ku, san, ian, crld, cp, ski, aia},
			x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, x509.SHA256WithRSA, profile.OIDPolicySign,
			"CN=13221SIGN0123456789ABCDEF,L=Kiyose-shi,L=Tokyo-to,C=JP"},
		{"auth", rsaAuth, key("ca"), config(), authRequest(),
			[]string{aki, ku, crld, cp, ski, aia},
			x509.KeyUsageDigitalSignature, x509.SHA256WithRSA, profile.OIDPolicyAuth,
			"CN=13221AUTH0123456789ABCDEF,C=JP"},
		{"sign without OCSP", rsaSign, key("ca"), noOCSP, signRequest(),
			[]string{aki, ku, san, ian, crld, cp, ski},
			x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, x509.SHA256WithRSA, profile.OIDPolicySign,
			"CN=13221SIGN0123456789ABCDEF,L=Kiyose-shi,L=Tokyo-to,C=JP"},
		{"auth P-256 holder, P-256 issuer", newIssuer(t, auth, key("ca-p256")), key("ca-p256"), config(), p256Holder,
			[]string{aki, ku, crld, cp, ski, aia},
			x509.KeyUsageDigitalSignature, x509.ECDSAWithSHA256, profile.OIDPolicyAuth,
			"CN=13221AUTH0123456789ABCDEF,C=JP"},
		{"sign, P-384 issuer", newIssuer(t, sign, key("ca-p384")), key("ca-p384"), config(), signRequest(),
			[]string{aki, ku, san, ian, crld, cp, ski, aia},
			x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, x509.ECDSAWithSHA384, profile.OIDPolicySign,
			"CN=13221SIGN0123456789ABCDEF,L=Kiyose-shi,L=Tokyo-to,C=JP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, der := issue(t, tc.issuer, tc.signer, tc.cfg, tc.req)
			if err := profile.Check(cert, tc.issuer, tc.cfg, tc.req); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if err := cert.CheckSignatureFrom(tc.issuer); err != nil {
				t.Errorf("signature: %v", err)
			}

			var exts []string
			for _, e := range cert.Extensions {
				exts = append(exts, e.Id.String())
			}
			if !slices.Equal(exts, tc.wantExts) {
				t.Errorf("extensions %v, want %v", exts, tc.wantExts)
			}
			if cert.KeyUsage != tc.wantKU || cert.SignatureAlgorithm != tc.wantAlg || cert.Version != 3 {
				t.Errorf("keyUsage %b, algorithm %v, version %d", cert.KeyUsage, cert.SignatureAlgorithm, cert.Version)
			}
			if cert.BasicConstraintsValid || len(cert.ExtKeyUsage) > 0 || len(cert.UnknownExtKeyUsage) > 0 {
				t.Error("basicConstraints or extendedKeyUsage present")
			}
			if len(cert.Policies) != 1 || cert.Policies[0].String() != tc.wantOID {
				t.Errorf("policies %v, want %s", cert.Policies, tc.wantOID)
			}
			if !bytes.Equal(cert.AuthorityKeyId, tc.issuer.SubjectKeyId) {
				t.Error("authorityKeyIdentifier is not the issuer's subjectKeyIdentifier")
			}
			var rdns pkix.RDNSequence
			if _, err := asn1.Unmarshal(cert.RawSubject, &rdns); err != nil {
				t.Fatal(err)
			}
			if got := rdns.String(); got != tc.wantNames {
				t.Errorf("subject %s, want %s", got, tc.wantNames)
			}
			if !slices.Equal(cert.CRLDistributionPoints, []string{tc.req.CRL.URL}) {
				t.Errorf("CRL URLs %v", cert.CRLDistributionPoints)
			}
			if tc.cfg.OCSPURL != "" && !slices.Equal(cert.OCSPServer, []string{tc.cfg.OCSPURL}) {
				t.Errorf("OCSP %v", cert.OCSPServer)
			}

			roots := x509.NewCertPool()
			roots.AddCert(tc.issuer)
			if _, err := cert.Verify(x509.VerifyOptions{
				Roots:       roots,
				CurrentTime: time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC),
				KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			}); err != nil {
				t.Errorf("Verify: %v", err)
			}

			warnings, err := profile.Lint(der)
			if err != nil {
				t.Errorf("Lint: %v", err)
			}
			for _, w := range warnings {
				t.Logf("zlint warning: %s", w)
			}
		})
	}
}

// TestThrowawayPass is the CA's cycle: a copy signed by a throwaway key
// passes Check and Lint before the issuer key signs the same template.
func TestThrowawayPass(t *testing.T) {
	issuer := newIssuer(t, sign, key("ca"))
	req := signRequest()
	tmpl, err := profile.Template(issuer, config(), req)
	if err != nil {
		t.Fatal(err)
	}
	throwaway, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	lintParent := *issuer
	lintParent.PublicKey = throwaway.Public()
	lintCert, lintDER := create(t, tmpl, &lintParent, throwaway)
	if err := profile.Check(lintCert, issuer, config(), req); err != nil {
		t.Fatalf("Check of the lint copy: %v", err)
	}
	if _, err := profile.Lint(lintDER); err != nil {
		t.Fatalf("Lint of the lint copy: %v", err)
	}
	if lintCert.CheckSignatureFrom(issuer) == nil {
		t.Fatal("the lint copy verifies under the issuer key")
	}
	real, realDER := create(t, tmpl, issuer, key("ca"))
	if err := profile.Check(real, issuer, config(), req); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := real.CheckSignatureFrom(issuer); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.Lint(realDER); err != nil {
		t.Fatalf("Lint: %v", err)
	}
	if !bytes.Equal(lintCert.RawTBSCertificate, real.RawTBSCertificate) {
		t.Error("the lint copy and the real certificate differ before the signature")
	}
}

// openssl runs the openssl command line on der and returns its output.
func openssl(t *testing.T, der []byte, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl not installed: run make test (deploy/dev/deps.sh installs it)")
	}
	f := filepath.Join(t.TempDir(), "in.der")
	if err := os.WriteFile(f, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", append(args, "-inform", "DER", "-in", f)...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestOpenSSLText reads the certificates as `openssl x509 -text` shows them.
func TestOpenSSLText(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       string
		req     profile.Request
		subject string
		exts    []string // extension headers in order
		absent  []string
		present []string
	}{
		{"sign", "sign", signRequest(),
			"Subject: C = JP, L = Tokyo-to, L = Kiyose-shi, CN = 13221SIGN0123456789ABCDEF",
			[]string{
				"X509v3 Authority Key Identifier: \n", "X509v3 Key Usage: critical\n",
				"X509v3 Subject Alternative Name: \n", "X509v3 Issuer Alternative Name: \n",
				"X509v3 CRL Distribution Points: \n", "X509v3 Certificate Policies: critical\n",
				"X509v3 Subject Key Identifier: \n", "Authority Information Access: \n",
			},
			[]string{"Basic Constraints", "Extended Key Usage"},
			[]string{
				"Digital Signature, Non Repudiation",
				"othername: 1.2.392.200149.8.5.5.1::", "othername: 1.2.392.200149.8.5.5.4::319801231",
				"othername: 1.2.392.200149.8.5.5.3::1", "othername: 1.2.392.200149.8.5.5.5::",
				"othername: 1.2.392.200149.8.5.5.2::01000", "othername: 1.2.392.200149.8.5.5.6::0000",
				"Policy: 1.2.392.200149.8.5.1.1.20", "CPS: https://www.shomei.example/cps/",
				"URI:http://crl.shomei.example/sign/g1/13221.crl",
				"OCSP - URI:http://ocsp.shomei.example/",
			}},
		{"auth", "auth", authRequest(),
			"Subject: C = JP, CN = 13221AUTH0123456789ABCDEF",
			[]string{
				"X509v3 Authority Key Identifier: \n", "X509v3 Key Usage: critical\n",
				"X509v3 CRL Distribution Points: \n", "X509v3 Certificate Policies: critical\n",
				"X509v3 Subject Key Identifier: \n", "Authority Information Access: \n",
			},
			[]string{"Basic Constraints", "Extended Key Usage", "Alternative Name", "othername", "L = "},
			[]string{"Digital Signature\n", "Policy: 1.2.392.200149.8.5.1.3.30"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			issuer := newIssuer(t, tc.req.Profile, key("ca"))
			_, der := issue(t, issuer, key("ca"), config(), tc.req)
			out := openssl(t, der, "x509", "-noout", "-text", "-nameopt", "oneline,-esc_msb")
			if !strings.Contains(out, tc.subject+"\n") {
				t.Errorf("no %q in\n%s", tc.subject, out)
			}
			last := -1
			for _, h := range tc.exts {
				i := strings.Index(out, h)
				if i < 0 || i < last {
					t.Errorf("extension %q missing or out of order in\n%s", strings.TrimSpace(h), out)
				}
				last = i
			}
			if n := strings.Count(out, "X509v3 ") - 1 + strings.Count(out, "Authority Information Access"); n != len(tc.exts) {
				t.Errorf("%d extensions, want %d:\n%s", n, len(tc.exts), out)
			}
			for _, s := range tc.absent {
				if strings.Contains(out, s) {
					t.Errorf("%q present in\n%s", s, out)
				}
			}
			for _, s := range tc.present {
				if !strings.Contains(out, s) {
					t.Errorf("%q missing in\n%s", s, out)
				}
			}
		})
	}
}

// TestOtherNames reads the subjectAltName both with openssl asn1parse and
// with a parser written here, independent of the package's own.
func TestOtherNames(t *testing.T) {
	issuer := newIssuer(t, sign, key("ca"))
	req := signRequest()
	cert, _ := issue(t, issuer, key("ca"), config(), req)
	var value []byte
	for _, e := range cert.Extensions {
		if e.Id.String() == san {
			value = e.Value
		}
	}
	want := []struct{ oid, value string }{
		{"1.2.392.200149.8.5.5.1", testName},
		{"1.2.392.200149.8.5.5.4", "319801231"},
		{"1.2.392.200149.8.5.5.3", "1"},
		{"1.2.392.200149.8.5.5.5", testAddress},
		{"1.2.392.200149.8.5.5.2", "01000"},
		{"1.2.392.200149.8.5.5.6", req.AddressMap},
	}

	t.Run("own parser", func(t *testing.T) {
		in := cryptobyte.String(value)
		var names cryptobyte.String
		if !in.ReadASN1(&names, cbasn1.SEQUENCE) || !in.Empty() {
			t.Fatal("not a SEQUENCE")
		}
		for i, w := range want {
			var on, explicit, utf8 cryptobyte.String
			var oid asn1.ObjectIdentifier
			// [0] IMPLICIT OtherName: context-specific, constructed, tag 0.
			if !names.ReadASN1(&on, cbasn1.Tag(0).ContextSpecific().Constructed()) {
				t.Fatalf("entry %d is not an otherName", i)
			}
			// value [0] EXPLICIT: a constructed [0] wrapping the UTF8String (tag 12).
			if !on.ReadASN1ObjectIdentifier(&oid) || !on.ReadASN1(&explicit, cbasn1.Tag(0).ContextSpecific().Constructed()) || !on.Empty() ||
				!explicit.ReadASN1(&utf8, cbasn1.UTF8String) || !explicit.Empty() {
				t.Fatalf("entry %d is not OID + [0] EXPLICIT UTF8String", i)
			}
			if oid.String() != w.oid || string(utf8) != w.value {
				t.Errorf("entry %d: %s = %q, want %s = %q", i, oid, utf8, w.oid, w.value)
			}
		}
		if !names.Empty() {
			t.Error("more than six entries")
		}
	})

	t.Run("openssl asn1parse", func(t *testing.T) {
		out := openssl(t, value, "asn1parse")
		// Each entry: cont [ 0 ] (the otherName), OBJECT, cont [ 0 ] (the
		// explicit tag), UTF8STRING, at increasing depth.
		re := regexp.MustCompile(`d=1 .* cons: cont \[ 0 \]\s*\n.*d=2 .* prim: OBJECT\s*:([0-9.]+)\s*\n.*d=2 .* cons: cont \[ 0 \]\s*\n.*d=3 .* prim: UTF8STRING\s*:(.*)\n`)
		m := re.FindAllStringSubmatch(out, -1)
		if len(m) != len(want) {
			t.Fatalf("%d otherName entries in\n%s", len(m), out)
		}
		for i, w := range want {
			if m[i][1] != w.oid || m[i][2] != w.value {
				t.Errorf("entry %d: %s = %q, want %s = %q", i, m[i][1], m[i][2], w.oid, w.value)
			}
		}
	})
}
