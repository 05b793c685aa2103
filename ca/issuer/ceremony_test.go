package issuer_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	auditlog "github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/open"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

const (
	labelRSA      = "ceremony-rsa"
	labelEC       = "ceremony-ec"
	labelLeftover = "ceremony-leftover"
	labelTwice    = "ceremony-twice"
)

var testDir *softhsm.Dir

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, "issuer tests", []string{labelRSA, labelEC, labelLeftover, labelTwice}, func(dir *softhsm.Dir) error {
		testDir = dir
		return nil
	}))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fixedNow is the ceremony's clock in these tests.
var fixedNow = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func TestCeremonyRSADefaults(t *testing.T) {
	tok, st := open.Token(t, labelRSA), open.Store(t)
	c := issuer.Ceremony{Token: tok, Store: st, Config: issuer.DefaultConfig(), Operator: "alice",
		Now: func() time.Time { return fixedNow }, Log: quiet}
	keys, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d issuer keys, want 2", len(keys))
	}
	loaded, err := issuer.Load(st)
	if err != nil {
		t.Fatal(err)
	}
	wantDN := map[storev1.Profile]string{
		storev1.Profile_PROFILE_SIGN: "C = JP, O = JPKI, OU = JPKI for digital signature, OU = Japan Agency for Local Authority Information Systems",
		storev1.Profile_PROFILE_AUTH: "C = JP, O = JPKI, OU = JPKI for user authentication, OU = Japan Agency for Local Authority Information Systems",
	}
	for _, is := range loaded {
		name := issuer.ShortName(is.Profile)
		t.Run(name, func(t *testing.T) {
			cert := is.Certificate
			if is.Generation != 1 || is.State != storev1.KeyState_KEY_STATE_ACTIVE || is.KeyAlgorithm != "rsa2048" {
				t.Errorf("record: generation %d state %v algorithm %q", is.Generation, is.State, is.KeyAlgorithm)
			}
			if is.KeyLabel != "shomei-"+name+"-g1" || len(is.KeyId) != 16 {
				t.Errorf("key label %q id %x", is.KeyLabel, is.KeyId)
			}
			if cert.SignatureAlgorithm != x509.SHA256WithRSA {
				t.Errorf("signature algorithm %v, want sha256WithRSA (R-P1)", cert.SignatureAlgorithm)
			}
			if k, ok := cert.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 || k.E != 65537 {
				t.Errorf("public key is not RSA-2048 with e=65537")
			}
			if !cert.NotBefore.Equal(fixedNow) || !cert.NotAfter.Equal(fixedNow.AddDate(10, 0, 0)) {
				t.Errorf("validity %v..%v, want ten years from %v", cert.NotBefore, cert.NotAfter, fixedNow)
			}
			if err := issuer.Check(cert, issuer.DefaultDN(is.Profile), fixedNow, fixedNow.AddDate(10, 0, 0)); err != nil {
				t.Error(err)
			}
			// The stored reference finds a key in the token that signs for
			// the certificate.
			if _, err := is.Signer(context.Background(), tok); err != nil {
				t.Error(err)
			}

			// A client nobody here wrote reads the certificate the same way.
			text := opensslText(t, cert)
			for _, want := range []string{
				"Issuer: " + wantDN[is.Profile],
				"Subject: " + wantDN[is.Profile],
				"CA:TRUE, pathlen:0",
				"X509v3 Basic Constraints: critical",
				"X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign",
				"Signature Algorithm: sha256WithRSAEncryption",
				"Public-Key: (2048 bit)",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("openssl x509 -text does not show %q:\n%s", want, text)
				}
			}
		})
	}

	// The keys in the token are private, sensitive and never extractable,
	// as pkcs11-tool (OpenSC) reports them.
	objects := pkcs11Tool(t, labelRSA, true)
	for _, label := range []string{"shomei-sign-g1", "shomei-auth-g1"} {
		block := objectBlock(objects, label)
		if block == "" {
			t.Fatalf("pkcs11-tool does not list %s:\n%s", label, objects)
		}
		if !strings.Contains(block, "sensitive, always sensitive, never extractable") {
			t.Errorf("%s is not sensitive and never extractable:\n%s", label, block)
		}
	}
	// Private objects are invisible without logging in.
	if anon := pkcs11Tool(t, labelRSA, false); strings.Contains(anon, "Private Key Object") {
		t.Errorf("private keys are visible without login:\n%s", anon)
	}

	// The audit trail records every key operation and verifies.
	n, err := st.VerifyAudit()
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	if err := st.AuditRecords(func(r *storev1.AuditRecord) error {
		if r.Actor != "alice" {
			t.Errorf("audit record %d actor %q, want alice", r.Seq, r.Actor)
		}
		actions = append(actions, r.Action)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := "issuer.key.generate issuer.certificate.create issuer.key.generate issuer.certificate.create ceremony.complete"
	if got := strings.Join(actions, " "); got != want || n != 5 {
		t.Errorf("audit (%d records) = %s, want %s", n, got, want)
	}
}

func TestCeremonyECDSAAndCustomDN(t *testing.T) {
	tok, st := open.Token(t, labelEC), open.Store(t)
	signDN := x509enc.DN{{Type: "C", Value: "JP"}, {Type: "O", Value: "Shomei Test"}, {Type: "OU", Value: "Signature"}}
	cfg := issuer.Config{Algorithm: hsm.ECDSAP384, ValidityYears: 12, SignDN: signDN}
	c := issuer.Ceremony{Token: tok, Store: st, Config: cfg, Now: func() time.Time { return fixedNow }, Log: quiet}
	if _, err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	loaded, err := issuer.Load(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, is := range loaded {
		cert := is.Certificate
		if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
			t.Errorf("%s: public key is not P-384", is.KeyLabel)
		}
		if cert.SignatureAlgorithm != x509.ECDSAWithSHA384 {
			t.Errorf("%s: signature algorithm %v, want ECDSA-SHA384", is.KeyLabel, cert.SignatureAlgorithm)
		}
		wantDN := issuer.DefaultDN(is.Profile) // AUTH keeps the default
		if is.Profile == storev1.Profile_PROFILE_SIGN {
			wantDN = signDN
		}
		if err := issuer.Check(cert, wantDN, fixedNow, fixedNow.AddDate(12, 0, 0)); err != nil {
			t.Errorf("%s: %v", is.KeyLabel, err)
		}
	}
}

func TestCeremonyRefusesToRunTwice(t *testing.T) {
	tok, st := open.Token(t, labelTwice), open.Store(t)
	c := issuer.Ceremony{Token: tok, Store: st, Config: issuer.DefaultConfig(), Log: quiet}
	if _, err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, _ := tok.Keys(context.Background())
	_, err := c.Run(context.Background())
	if !errors.Is(err, store.ErrAlreadyInitialized) {
		t.Fatalf("second ceremony = %v, want ErrAlreadyInitialized", err)
	}
	after, _ := tok.Keys(context.Background())
	if len(after) != len(before) {
		t.Fatalf("second ceremony changed the token: %d keys before, %d after", len(before), len(after))
	}
	keys, err := st.Issuers()
	if err != nil || len(keys) != 2 {
		t.Fatalf("store has %d issuers (%v) after the refused ceremony, want 2", len(keys), err)
	}
}

func TestCeremonyRefusesLeftoverKeys(t *testing.T) {
	tok := open.Token(t, labelLeftover)
	// A key left by a ceremony that died before recording anything.
	if _, err := tok.GenerateKey(context.Background(), hsm.KeyRef{Label: "shomei-sign-g1", ID: []byte{1}}, hsm.RSA2048); err != nil {
		t.Fatal(err)
	}
	// And an earlier CA's audit witness, which the new audit key would
	// not verify.
	if err := tok.WriteData(context.Background(), hsm.DataObject{Label: auditlog.WitnessLabel, Application: "old", Value: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	c := issuer.Ceremony{Token: tok, Store: open.Store(t), Config: issuer.DefaultConfig(), Log: quiet}
	_, err := c.Run(context.Background())
	if !errors.Is(err, issuer.ErrTokenNotEmpty) || !strings.Contains(err.Error(), `label "shomei-sign-g1" id 01`) ||
		!strings.Contains(err.Error(), `label "shomei-audit-witness"`) {
		t.Fatalf("ceremony over leftover keys = %v, want ErrTokenNotEmpty naming the key and the witness", err)
	}
	if done, _ := c.Store.Initialized(); done {
		t.Fatal("the refused ceremony initialised the store")
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  issuer.Config
		want string
	}{
		{issuer.Config{Algorithm: "rsa1024"}, `unknown key algorithm "rsa1024"`},
		{issuer.Config{ValidityYears: 31}, "validity_years 31"},
		{issuer.Config{SignDN: x509enc.DN{{Type: "X", Value: "y"}}}, `attribute type "X"`},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	def := issuer.Config{}
	if err := def.Validate(); err != nil || def.Algorithm != hsm.RSA2048 || def.ValidityYears != 10 {
		t.Fatalf("zero config does not default to RSA-2048 for ten years: %+v %v", def, err)
	}
}

func opensslText(t *testing.T, cert *x509.Certificate) string {
	t.Helper()
	cmd := exec.Command("openssl", "x509", "-noout", "-text")
	cmd.Stdin = bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509: %v: %s", err, out)
	}
	return string(out)
}

func pkcs11Tool(t *testing.T, label string, login bool) string {
	t.Helper()
	mod, err := softhsm.Module()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--module", mod, "--token-label", label, "--list-objects"}
	if login {
		args = append(args, "--login", "--pin", softhsm.TestPIN)
	}
	cmd := exec.Command("pkcs11-tool", args...)
	cmd.Env = testDir.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v: %s", err, out)
	}
	return string(out)
}

// objectBlock returns pkcs11-tool's description of the private key labelled
// label. Each object starts with an unindented header line.
func objectBlock(listing, label string) string {
	var blocks []string
	for _, line := range strings.Split(listing, "\n") {
		if line != "" && line[0] != ' ' {
			blocks = append(blocks, "")
		}
		if len(blocks) > 0 {
			blocks[len(blocks)-1] += line + "\n"
		}
	}
	for _, b := range blocks {
		if strings.HasPrefix(b, "Private Key Object") && strings.Contains(b, "label:      "+label+"\n") {
			return b
		}
	}
	return ""
}
