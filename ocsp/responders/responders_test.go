package responders_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/open"
	"github.com/shomei-pki/shomei/ocsp"
	"github.com/shomei-pki/shomei/ocsp/responders"
)

const tokenLabel = "responders-test"

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, "responders tests", []string{tokenLabel}, nil))
}

// issuerCA is a software issuer (the CA's own key handling is tested in
// ca/issuer); it certifies responders like ca.CertifyResponder does.
type issuerCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	fail error // when set, CertifyResponder fails with it
	n    int   // certificates signed
	// wrong makes it certify another key.
	wrong bool
	// cap, when set, shortens every certificate to at most this, as the
	// CA caps responder certificates (R-R6).
	cap time.Duration
}

func newIssuer(t *testing.T, now time.Time) *issuerCA {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	cert, err := testenv.SelfSigned(tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return &issuerCA{cert: cert, key: key}
}

func (c *issuerCA) CertifyResponder(_ context.Context, issuer string, responder crypto.Signer, notBefore, notAfter time.Time) ([]byte, error) {
	if c.fail != nil {
		return nil, c.fail
	}
	if issuer != "sign-g1" {
		return nil, fmt.Errorf("no issuer %q", issuer)
	}
	pub := responder.Public()
	if c.wrong {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		pub = k.Public()
	}
	c.n++
	if c.cap > 0 && notAfter.Sub(notBefore) > c.cap {
		notAfter = notBefore.Add(c.cap)
	}
	return ocsp.NewResponderCertificate(c.cert, c.key, pub, notBefore, notAfter, big.NewInt(int64(100+c.n)))
}

// memStore is a CertStore in memory (ca/store's is tested there).
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) ResponderCertificate(label string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[label], nil
}

func (s *memStore) SaveResponderCertificate(label string, der []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[label] = der
	return nil
}

// TestKeeper walks a responder's life: key generated in the HSM and
// certified on first use; reused, not re-certified, while valid; renewed
// RenewBefore ahead of expiry with the same key; kept while the CA is down
// until it expires; a wrong certificate from the certifier refused (R-R6).
func TestKeeper(t *testing.T) {
	ctx := context.Background()
	tok := open.Token(t, tokenLabel)
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { return now }
	ca := newIssuer(t, now)
	st := &memStore{m: map[string][]byte{}}
	newKeeper := func() *responders.Keeper {
		k, err := responders.New(responders.Config{
			Token: tok, Targets: []responders.Target{{Name: "sign-g1", Certificate: ca.cert}}, KeyPrefix: "test-ocsp",
			Certifier: ca, Store: st, Validity: 10 * time.Hour, RenewBefore: 4 * time.Hour, Now: clock,
		})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k := newKeeper()
	issuers, next, err := k.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := issuers[0]
	if ca.n != 1 {
		t.Fatalf("%d certificates signed on first use, want 1", ca.n)
	}
	if _, ok := first.Signer.(*hsm.Signer); !ok {
		t.Fatalf("the responder signer is a %T, not an HSM key", first.Signer)
	}
	if want := first.Responder.NotAfter.Add(-4 * time.Hour); !next.Equal(want) {
		t.Errorf("next renewal %v, want notAfter - RenewBefore = %v", next, want)
	}
	keys, err := tok.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, key := range keys {
		if key.Label == "test-ocsp-sign-g1" {
			found++
			if !key.Sensitive || key.Extractable {
				t.Error("the responder key is extractable or not sensitive")
			}
		}
	}
	if found != 1 {
		t.Fatalf("%d keys labelled test-ocsp-sign-g1 in the token, want 1", found)
	}

	// A restart (a new Keeper) reuses key and certificate.
	issuers, _, err = newKeeper().Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ca.n != 1 || !issuers[0].Responder.Equal(first.Responder) {
		t.Fatalf("a restart certified a new responder (%d signed)", ca.n)
	}

	// Inside RenewBefore: a new certificate for the same key.
	now = now.Add(6*time.Hour + time.Second)
	issuers, _, err = k.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	renewed := issuers[0]
	if ca.n != 2 || renewed.Responder.Equal(first.Responder) {
		t.Fatalf("not renewed inside RenewBefore (%d signed)", ca.n)
	}
	if !renewed.Responder.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(first.Responder.PublicKey) {
		t.Error("renewal changed the key")
	}

	// The CA is down: the current certificate serves until it expires.
	ca.fail = errors.New("connection refused")
	now = renewed.Responder.NotAfter.Add(-time.Hour)
	issuers, next, err = k.Current(ctx)
	if err != nil {
		t.Fatalf("with the CA down and a valid certificate: %v", err)
	}
	if !issuers[0].Responder.Equal(renewed.Responder) || next.After(now.Add(time.Minute)) {
		t.Errorf("with the CA down: not the current certificate, or retry at %v (now %v)", next, now)
	}
	now = renewed.Responder.NotAfter
	if _, _, err := k.Current(ctx); err == nil {
		t.Error("an expired responder certificate was handed out")
	}

	// A certifier returning a certificate for another key is refused, and
	// nothing is saved.
	ca.fail, ca.wrong = nil, true
	before, _ := st.ResponderCertificate("test-ocsp-sign-g1")
	if _, _, err := k.Current(ctx); err == nil {
		t.Error("a certificate for another key was accepted")
	}
	if after, _ := st.ResponderCertificate("test-ocsp-sign-g1"); string(after) != string(before) {
		t.Error("a refused certificate was saved")
	}
	ca.wrong = false
	if _, _, err := k.Current(ctx); err != nil {
		t.Errorf("after the CA is back: %v", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tok := open.Token(t, tokenLabel)
	ca := newIssuer(t, time.Now())
	base := responders.Config{Token: tok, Targets: []responders.Target{{Name: "sign-g1", Certificate: ca.cert}}, KeyPrefix: "x", Certifier: ca, Store: &memStore{}}
	for name, mod := range map[string]func(*responders.Config){
		"no token":                 func(c *responders.Config) { c.Token = nil },
		"no targets":               func(c *responders.Config) { c.Targets = nil },
		"no prefix":                func(c *responders.Config) { c.KeyPrefix = "" },
		"no certifier":             func(c *responders.Config) { c.Certifier = nil },
		"renew before >= validity": func(c *responders.Config) { c.Validity, c.RenewBefore = time.Hour, time.Hour },
		"target without name":      func(c *responders.Config) { c.Targets = []responders.Target{{Certificate: ca.cert}} },
	} {
		cfg := base
		mod(&cfg)
		if _, err := responders.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestKeeperCappedValidity: a replica configured for 7-day certificates,
// renewed 2 days before, against a CA that grants 24 h: the certificate is
// renewed in proportion (about 6.9 h before its end), not at once on every
// start nor only when it expires.
func TestKeeperCappedValidity(t *testing.T) {
	ctx := context.Background()
	tok := open.Token(t, tokenLabel)
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { return now }
	ca := newIssuer(t, now)
	ca.cap = 24 * time.Hour
	k, err := responders.New(responders.Config{
		Token: tok, Targets: []responders.Target{{Name: "sign-g1", Certificate: ca.cert}}, KeyPrefix: "test-ocsp-capped",
		Certifier: ca, Store: &memStore{m: map[string][]byte{}}, Validity: 7 * 24 * time.Hour, RenewBefore: 2 * 24 * time.Hour, Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	issuers, next, err := k.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	left := issuers[0].Responder.NotAfter.Sub(next)
	if left < 6*time.Hour || left > 8*time.Hour {
		t.Errorf("renewal %v before the end of a 24 h certificate; want about 6.9 h", left)
	}
	if _, _, err := k.Current(ctx); err != nil || ca.n != 1 {
		t.Errorf("a second Current re-certified (%d signed, %v); want the saved certificate kept", ca.n, err)
	}
}
