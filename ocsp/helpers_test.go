package ocsp_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/ocsp"
)

// jst is Japan time: tests pin dates there.
var jst = time.FixedZone("JST", 9*60*60)

// issuerDN is the SIGN issuer's DN (R-P1), one attribute per RDN; both key
// generations share it.
var issuerDN = func() []byte {
	attr := func(oid []int, v string) []pkix.AttributeTypeAndValue {
		return []pkix.AttributeTypeAndValue{{Type: oid, Value: v}}
	}
	c, o, ou := []int{2, 5, 4, 6}, []int{2, 5, 4, 10}, []int{2, 5, 4, 11}
	der, err := asn1.Marshal(pkix.RDNSequence{
		attr(c, "JP"), attr(o, "JPKI"), attr(ou, "JPKI for digital signature"),
		attr(ou, "Japan Agency for Local Authority Information Systems"),
	})
	if err != nil {
		panic(err)
	}
	return der
}()

// Serials of the test certificates.
var (
	serialGood      = big.NewInt(0x1001)
	serialRevoked   = big.NewInt(0x1002)
	serialUnknown   = big.NewInt(0x1003)
	serialGen2Good  = big.NewInt(0x2001)
	serialGen2Unsp  = big.NewInt(0x2002)
	serialOtherCA   = big.NewInt(0x3001)
	revokedAt       = time.Date(2026, 5, 1, 10, 0, 0, 0, jst)
	invalidityDate  = time.Date(2026, 5, 1, 9, 30, 0, 0, jst)
	fixtureNotAfter = 30 * 24 * time.Hour
)

// generation is an issuer key generation with its delegated responder.
type generation struct {
	cert      *x509.Certificate
	key       crypto.Signer
	responder *x509.Certificate
	signer    *countingSigner
	leaves    map[string]*x509.Certificate // by serial hex
}

// issuer is the ocsp.Issuer of the generation.
func (g *generation) issuer() *ocsp.Issuer {
	return &ocsp.Issuer{Certificate: g.cert, Responder: g.responder, Signer: g.signer}
}

func (g *generation) leaf(serial *big.Int) *x509.Certificate { return g.leaves[serial.Text(16)] }

// fixture is the test PKI: gen1 (RSA-2048 issuer, P-256 responder), gen2
// (same DN, P-384 issuer, RSA-2048 responder) and another CA nobody serves.
type fixture struct {
	gen1, gen2, other *generation
}

var fixtures = sync.OnceValues(func() (*fixture, error) {
	now := time.Now()
	rsaIssuer, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	rsaResponder, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	gen1, err := newGeneration(issuerDN, rsaIssuer, mustECDSA(elliptic.P256()), now, 1, serialGood, serialRevoked, serialUnknown)
	if err != nil {
		return nil, err
	}
	gen2, err := newGeneration(issuerDN, mustECDSA(elliptic.P384()), rsaResponder, now, 2, serialGen2Good, serialGen2Unsp)
	if err != nil {
		return nil, err
	}
	otherDN, err := asn1.Marshal(pkix.Name{Country: []string{"JP"}, Organization: []string{"Somebody Else"}}.ToRDNSequence())
	if err != nil {
		return nil, err
	}
	other, err := newGeneration(otherDN, mustECDSA(elliptic.P256()), mustECDSA(elliptic.P256()), now, 3, serialOtherCA)
	if err != nil {
		return nil, err
	}
	return &fixture{gen1: gen1, gen2: gen2, other: other}, nil
})

func mustECDSA(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func newGeneration(dn []byte, issuerKey, responderKey crypto.Signer, now time.Time, gen int64, serials ...*big.Int) (*generation, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(gen),
		RawSubject:            dn,
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, err := testenv.SelfSigned(tmpl, issuerKey)
	if err != nil {
		return nil, err
	}
	rder, err := ocsp.NewResponderCertificate(cert, issuerKey, responderKey.Public(), now.Add(-time.Hour), now.Add(fixtureNotAfter), big.NewInt(gen<<8|1))
	if err != nil {
		return nil, err
	}
	rcert, err := x509.ParseCertificate(rder)
	if err != nil {
		return nil, err
	}
	g := &generation{cert: cert, key: issuerKey, responder: rcert, signer: &countingSigner{Signer: responderKey}, leaves: map[string]*x509.Certificate{}}
	for _, sn := range serials {
		leafKey := mustECDSA(elliptic.P256())
		lt := &x509.Certificate{
			SerialNumber: sn,
			Subject:      pkix.Name{Country: []string{"JP"}, CommonName: "holder " + sn.Text(16)},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(365 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
		}
		lder, err := x509.CreateCertificate(rand.Reader, lt, cert, leafKey.Public(), issuerKey)
		if err != nil {
			return nil, err
		}
		if g.leaves[sn.Text(16)], err = x509.ParseCertificate(lder); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func loadFixture(t testing.TB) *fixture {
	t.Helper()
	f, err := fixtures()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// countingSigner counts the signatures of the responder key.
type countingSigner struct {
	crypto.Signer
	n atomic.Int64
}

func (s *countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.n.Add(1)
	return s.Signer.Sign(r, digest, opts)
}

// fakeSource is an in-memory Source.
type fakeSource struct {
	mu       sync.Mutex
	statuses map[*ocsp.Issuer]map[string]ocsp.Status
	err      error
	calls    atomic.Int64
	// gate, when set, is waited on before answering.
	gate chan struct{}
}

var _ ocsp.Source = (*fakeSource)(nil)

func newFakeSource() *fakeSource {
	return &fakeSource{statuses: map[*ocsp.Issuer]map[string]ocsp.Status{}}
}

func (s *fakeSource) set(is *ocsp.Issuer, serial *big.Int, st ocsp.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.statuses[is] == nil {
		s.statuses[is] = map[string]ocsp.Status{}
	}
	s.statuses[is][serial.Text(16)] = st
}

func (s *fakeSource) Status(ctx context.Context, is *ocsp.Issuer, serial *big.Int) (ocsp.Status, error) {
	// Read first, then wait at the gate: a slow Source (or signer) that
	// has already read the status.
	s.mu.Lock()
	gate, err := s.gate, s.err
	st, ok := s.statuses[is][serial.Text(16)]
	s.mu.Unlock()
	s.calls.Add(1)
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ocsp.Status{}, ctx.Err()
		}
	}
	if err != nil {
		return ocsp.Status{}, err
	}
	if !ok {
		return ocsp.Status{Status: ocsp.Unknown}, nil
	}
	return st, nil
}

var errSourceDown = errors.New("store unavailable")

// env is a responder over the fixture with its source and clock.
type env struct {
	f       *fixture
	gen1    *ocsp.Issuer
	gen2    *ocsp.Issuer
	other   *ocsp.Issuer
	source  *fakeSource
	clock   *testenv.Clock
	r       *ocsp.Responder
	signer1 *countingSigner
}

// newEnv serves gen1 and gen2 with fresh signers (so signature counts are
// per test): good, revoked (keyCompromise, with an invalidity date),
// unknown; gen2 good and revoked with no reason.
func newEnv(t testing.TB, mod func(*ocsp.Config)) *env {
	t.Helper()
	f := loadFixture(t)
	e := &env{f: f, source: newFakeSource(), clock: testenv.NewClock(time.Now().Truncate(time.Second))}
	fresh := func(g *generation) *ocsp.Issuer {
		s := &countingSigner{Signer: g.signer.Signer}
		return &ocsp.Issuer{Certificate: g.cert, Responder: g.responder, Signer: s}
	}
	e.gen1, e.gen2, e.other = fresh(f.gen1), fresh(f.gen2), fresh(f.other)
	e.signer1 = e.gen1.Signer.(*countingSigner)
	e.source.set(e.gen1, serialGood, ocsp.Status{Status: ocsp.Good})
	e.source.set(e.gen1, serialRevoked, ocsp.Status{Status: ocsp.Revoked, RevokedAt: revokedAt, Reason: 1, InvalidityDate: invalidityDate})
	e.source.set(e.gen2, serialGen2Good, ocsp.Status{Status: ocsp.Good})
	e.source.set(e.gen2, serialGen2Unsp, ocsp.Status{Status: ocsp.Revoked, RevokedAt: revokedAt})
	cfg := ocsp.Config{Issuers: []*ocsp.Issuer{e.gen1, e.gen2}, Source: e.source, Now: e.clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	r, err := ocsp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	return e
}

func (e *env) signs() int64 { return e.signer1.n.Load() }

// writePEM writes certificates to a PEM file in dir.
func writePEM(t testing.TB, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// oidNonce is id-pkix-ocsp-nonce.
var oidNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
