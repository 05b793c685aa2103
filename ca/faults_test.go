package ca

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
)

// Faults injected where the CA core meets the world (deps.go): an issuer
// key that stops signing, a store that fails a write. Whatever fails after
// the reservation, the reserved serials end ABANDONED, nothing is issued,
// revoked or audited as issued, and the same request succeeds once the
// fault is gone (doc.go, "Record before you sign").

// failingSigner is an issuer key whose HSM fails every signature.
type failingSigner struct {
	issuerSigner
	err error
}

func (f failingSigner) SignContext(context.Context, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, f.err
}

func (f failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, f.err }

// breakSigner makes p's active issuer key fail with err until the test ends
// or the returned function is called.
func breakSigner(t *testing.T, c *testCA, p Profile, err error) (repair func()) {
	t.Helper()
	iss := c.gens.Load().active[p]
	working := iss.signer
	iss.signer = failingSigner{issuerSigner: working, err: err}
	var once sync.Once
	repair = func() { once.Do(func() { iss.signer = working }) }
	t.Cleanup(repair)
	return repair
}

// faultyStore fails Complete, the write that stores signed certificates,
// or Abandon, the write that gives up reserved ones, while the method's
// error is set.
type faultyStore struct {
	Store
	mu                        sync.Mutex
	failComplete, failAbandon error
}

func (s *faultyStore) CompleteRenewal(c store.Completion) (int, error) {
	if err := s.fault(&s.failComplete); err != nil {
		return 0, err
	}
	return s.Store.CompleteRenewal(c)
}

func (s *faultyStore) Abandon(serials [][]byte) error {
	if err := s.fault(&s.failAbandon); err != nil {
		return err
	}
	return s.Store.Abandon(serials)
}

// fault is the error set for a method.
func (s *faultyStore) fault(which *error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *which
}

func (s *faultyStore) set(complete, abandon error) {
	s.mu.Lock()
	s.failComplete, s.failAbandon = complete, abandon
	s.mu.Unlock()
}

// states counts the holder's records by state.
func states(t *testing.T, c *testCA) map[storev1.CertState]int {
	t.Helper()
	out := map[storev1.CertState]int{}
	for _, r := range c.holderCerts(t, "holder-1") {
		out[r.State]++
	}
	return out
}

// issuanceAudits counts the audit records of issued or renewed
// certificates.
func issuanceAudits(t *testing.T, c *testCA) int {
	t.Helper()
	n := 0
	err := c.store.AuditRecords(func(r *storev1.AuditRecord) error {
		if strings.HasPrefix(r.Action, "certificate.") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The HSM fails AUTH's signature after SIGN's was made: both reservations
// are abandoned (R-A5), nothing is issued, and the caller is told to retry
// when the HSM is unavailable, else gets an internal error.
func TestSignFailsAfterReservation(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		kind Kind
	}{
		{"HSM unavailable: retry", fmt.Errorf("sign: %w", hsm.ErrTokenUnavailable), KindUnavailable},
		{"sessions exhausted: retry", fmt.Errorf("sign: %w", hsm.ErrPoolExhausted), KindUnavailable},
		{"a bad signature: internal", fmt.Errorf("sign: %w", hsm.ErrBadSignature), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestCA(t, caOptions{})
			repair := breakSigner(t, c, ProfileAuth, tc.err)
			req := request(t, ProfileSign, ProfileAuth)
			out, err := c.Issue(context.Background(), req)
			if err == nil || out != nil {
				t.Fatalf("issued %v despite the HSM failing", out)
			}
			if KindOf(err) != tc.kind || !errors.Is(err, tc.err) {
				t.Errorf("error %v: kind %d, want %d, wrapping the HSM's error", err, KindOf(err), tc.kind)
			}
			if got := states(t, c); got[storev1.CertState_CERT_STATE_ABANDONED] != 2 || len(got) != 1 {
				t.Errorf("records by state %v, want both reservations ABANDONED", got)
			}
			if n := issuanceAudits(t, c); n != 0 {
				t.Errorf("%d issuance audit records of a failed issuance", n)
			}

			repair()
			out, err = c.Issue(context.Background(), req)
			if err != nil {
				t.Fatalf("the same request once the HSM is back: %v", err)
			}
			if len(out.Certificates) != 2 {
				t.Errorf("%d certificates, want 2", len(out.Certificates))
			}
		})
	}
}

// The store fails to record a renewal's signed certificate: the old
// certificate is not superseded, the new one is abandoned, and a retry
// renews it (R-V4, R-K3).
func TestCompleteFailsNothingHalfWritten(t *testing.T) {
	var faulty *faultyStore
	c := newTestCA(t, caOptions{wrap: func(st *store.Store) Store {
		faulty = &faultyStore{Store: st}
		return faulty
	}})
	old := c.mustIssue(t, ceremonyDay, false, request(t, ProfileAuth)).Certificates[0]
	audits := issuanceAudits(t, c)

	faulty.set(errors.New("disk full"), nil)
	req := request(t, ProfileAuth)
	req.Application.CardExpiry = renewalCardLater
	c.setDate(t, "2031-04-01")
	if out, err := c.Renew(context.Background(), req); err == nil || out != nil || KindOf(err) != 0 {
		t.Fatalf("renewal with the store failing: %v, %v; want an internal error", out, err)
	}
	rec, err := c.Certificate(serialHex(old))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Revocation != nil {
		t.Errorf("the old certificate was revoked (%v) by a renewal that failed", rec.Revocation)
	}
	if got := states(t, c); got[storev1.CertState_CERT_STATE_ISSUED] != 1 || got[storev1.CertState_CERT_STATE_ABANDONED] != 1 || len(got) != 2 {
		t.Errorf("records by state %v, want the old one ISSUED and the new one ABANDONED", got)
	}
	if n := issuanceAudits(t, c); n != audits {
		t.Errorf("%d issuance audit records after the failed renewal, want %d", n, audits)
	}

	faulty.set(nil, nil)
	out, err := c.Renew(context.Background(), req)
	if err != nil {
		t.Fatalf("the same renewal once the store works: %v", err)
	}
	if len(out.Superseded) != 1 || SerialHex(out.Superseded[0]) != serialHex(old) {
		t.Errorf("superseded %x, want %x", out.Superseded, old.Serial)
	}
}

// A failed issuance that could not even be marked abandoned (as after a
// crash between reservation and completion) stays PENDING, and the next
// CA to start on the store abandons it: the store knows every serial the
// HSM may have signed, and none of them was delivered (doc.go).
func TestPendingAbandonedAtNextStart(t *testing.T) {
	var faulty *faultyStore
	c := newTestCA(t, caOptions{wrap: func(st *store.Store) Store {
		faulty = &faultyStore{Store: st}
		return faulty
	}})
	faulty.set(nil, errors.New("disk full"))
	breakSigner(t, c, ProfileAuth, fmt.Errorf("sign: %w", hsm.ErrBadSignature))
	if _, err := c.Issue(context.Background(), request(t, ProfileSign, ProfileAuth)); err == nil {
		t.Fatal("issued despite the HSM failing")
	}
	if got := states(t, c); got[storev1.CertState_CERT_STATE_PENDING] != 2 || len(got) != 1 {
		t.Fatalf("records by state %v, want both PENDING", got)
	}
	c.restart(t)
	if got := states(t, c); got[storev1.CertState_CERT_STATE_ABANDONED] != 2 || len(got) != 1 {
		t.Errorf("records by state %v after the restart, want both ABANDONED", got)
	}
}

// The HSM fails a responder certificate's signature: its reservation is
// abandoned and the caller is told to retry (R-R6).
func TestResponderSignFails(t *testing.T) {
	c := newTestCA(t, caOptions{})
	repair := breakSigner(t, c, ProfileSign, fmt.Errorf("sign: %w", hsm.ErrTokenUnavailable))
	key := mustECDSA(t, elliptic.P256())
	req := ResponderRequest{Issuer: "sign-g1", PublicKey: key.Public()}
	if der, err := c.CertifyResponder(context.Background(), req); err == nil || der != nil || KindOf(err) != KindUnavailable {
		t.Fatalf("certified %x despite the HSM failing: %v", der, err)
	}
	recs := responderRecords(t, c)
	if len(recs) != 1 || !strings.HasSuffix(recs[0], storev1.CertState_CERT_STATE_ABANDONED.String()) {
		t.Errorf("responder records %v, want one ABANDONED", recs)
	}
	repair()
	der, err := c.CertifyResponder(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
}

// missingKeys is an HSM that holds none of the recorded issuer keys (and
// makes none).
type missingKeys struct{ IssuerKeys }

func (missingKeys) SignerFor(_ context.Context, ref hsm.KeyRef, _ *x509.Certificate) (*hsm.Signer, error) {
	return nil, fmt.Errorf("hsm: key %s: %w", ref, hsm.ErrKeyNotFound)
}

// A CA whose HSM lacks an active issuer's key does not start, and says
// which issuer.
func TestNewWithoutIssuerKey(t *testing.T) {
	_, keys := issuerToken(t)
	st, err := store.Open(t.TempDir()+"/shomei.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.InitIssuers(keys, []*storev1.AuditRecord{auditOf(at(t, ceremonyDay), "test.issuers.copy")}); err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), Config{Store: st, Token: missingKeys{},
		Profile: profileConfig(), CRLBaseURL: "http://shomei.example/crl"})
	if !errors.Is(err, hsm.ErrKeyNotFound) || !strings.Contains(err.Error(), "issuer generation 1") {
		t.Errorf("New: %v; want the missing key of the issuer generation", err)
	}
}
