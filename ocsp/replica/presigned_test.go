package replica_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
	"google.golang.org/protobuf/types/known/timestamppb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/ocsp"
	"github.com/shomei-pki/shomei/ocsp/replica"
)

// counting counts a responder key's signatures.
type counting struct {
	crypto.Signer
	n atomic.Int64
}

func (c *counting) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	c.n.Add(1)
	return c.Signer.Sign(r, digest, opts)
}

// replicaPKI is an issuer "sign-g1", its delegated responder, and leaves.
type replicaPKI struct {
	issuer, responder *x509.Certificate
	key               crypto.Signer
	leaves            map[int64]*x509.Certificate
}

func newReplicaPKI(t *testing.T, now time.Time, serials ...int64) *replicaPKI {
	t.Helper()
	issuerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	responderKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issuer, err := testenv.SelfSigned(&x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sign-g1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ocsp.NewResponderCertificate(issuer, issuerKey, responderKey.Public(), now.Add(-time.Hour), now.Add(24*time.Hour), big.NewInt(2))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &replicaPKI{issuer: issuer, responder: rc, key: responderKey, leaves: map[int64]*x509.Certificate{}}
	for _, sn := range serials {
		leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ld, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(sn), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0)}, issuer, leafKey.Public(), issuerKey)
		if err != nil {
			t.Fatal(err)
		}
		if p.leaves[sn], err = x509.ParseCertificate(ld); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// replicaResponder is a responder over a replica store, with its
// pre-signer and a counting signer.
func replicaResponder(t *testing.T, st *replica.Store, p *replicaPKI, clock *testenv.Clock) (*ocsp.Responder, *ocsp.Presigner, *counting) {
	t.Helper()
	src := replica.NewSource(st, map[string]*x509.Certificate{"sign-g1": p.issuer})
	signer := &counting{Signer: p.key}
	r, err := ocsp.New(ocsp.Config{Issuers: []*ocsp.Issuer{{Certificate: p.issuer, Responder: p.responder, Signer: signer}},
		Source: src, Presigned: src, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := ocsp.NewPresigner(ocsp.PresignConfig{Responder: r, Store: src, Budget: 100})
	if err != nil {
		t.Fatal(err)
	}
	return r, ps, signer
}

// ask asks r about serial (SHA-1 CertID, no nonce) and returns the
// parsed answer.
func ask(t *testing.T, r http.Handler, p *replicaPKI, serial int64) *xocsp.Response {
	t.Helper()
	der, err := xocsp.CreateRequest(p.leaves[serial], p.issuer, &xocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/ocsp", bytes.NewReader(der)))
	resp, err := xocsp.ParseResponseForCert(rec.Body.Bytes(), p.leaves[serial], p.issuer)
	if err != nil {
		t.Fatalf("serial %d: %v", serial, err)
	}
	return resp
}

// TestReplicaPresigned: the replica pre-signs, with its own responder key,
// every status its copy holds (thisUpdate: when it was last in sync) and
// keeps the responses in its file; answers cost no signature, also after
// a restart; a revocation arriving on the stream drops the good response
// in the transaction that applies it.
func TestReplicaPresigned(t *testing.T) {
	st, path := open(t)
	clock := testenv.NewClock(time.Now().Truncate(time.Second))
	p := newReplicaPKI(t, clock.Now(), 1, 2, 3)
	sent := timestamppb.New(clock.Now())
	if _, err := st.Apply(&cav1.FollowResponse{Statuses: []*cav1.CertificateStatus{good(1), good(2), revoked(3, 1, clock.Now().Add(-time.Hour))}, Snapshot: true, Revision: 5, SentAt: sent}); err != nil {
		t.Fatal(err)
	}
	r, ps, signer := replicaResponder(t, st, p, clock)
	// Before the first sync nothing is pre-signed.
	if res, err := ps.Step(context.Background()); err != nil || res.Signed != 0 {
		t.Fatalf("before the sync: %+v, %v", res, err)
	}
	if _, err := st.Apply(&cav1.FollowResponse{Revision: 5, SentAt: sent}); err != nil {
		t.Fatal(err)
	}
	if res, err := ps.Step(context.Background()); err != nil || res.Stored != 3 {
		t.Fatalf("after the sync: %+v, %v", res, err)
	}
	before := signer.n.Load()
	for sn, want := range map[int64]int{1: xocsp.Good, 2: xocsp.Good, 3: xocsp.Revoked} {
		resp := ask(t, r, p, sn)
		if resp.Status != want || !resp.ThisUpdate.Equal(sent.AsTime()) {
			t.Errorf("serial %d: status %d thisUpdate %v; want %d, %v", sn, resp.Status, resp.ThisUpdate, want, sent.AsTime())
		}
	}
	if n := signer.n.Load() - before; n != 0 {
		t.Errorf("%d signatures for pre-signed certificates", n)
	}

	// A revocation on the stream: the good response goes with it.
	clock.Add(time.Minute)
	src := replica.NewSource(st, map[string]*x509.Certificate{"sign-g1": p.issuer})
	if _, err := st.Apply(&cav1.FollowResponse{Statuses: []*cav1.CertificateStatus{revoked(2, 4, clock.Now())}, Revision: 6, SentAt: timestamppb.New(clock.Now())}); err != nil {
		t.Fatal(err)
	}
	if rec, err := src.PresignedResponse(big.NewInt(2).Bytes()); err != nil || rec != nil {
		t.Fatalf("after the revocation: %v, %v", rec, err)
	}
	r.Invalidate(big.NewInt(2))
	if resp := ask(t, r, p, 2); resp.Status != xocsp.Revoked {
		t.Fatalf("after the revocation: status %d", resp.Status)
	}
	if res, err := ps.Step(context.Background()); err != nil || res.Stored != 1 {
		t.Fatalf("re-signing the revocation: %+v, %v", res, err)
	}

	// A restart: everything from the file.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := replica.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	r2, _, signer2 := replicaResponder(t, st2, p, clock)
	for sn, want := range map[int64]int{1: xocsp.Good, 2: xocsp.Revoked, 3: xocsp.Revoked} {
		if resp := ask(t, r2, p, sn); resp.Status != want {
			t.Errorf("restarted, serial %d: status %d, want %d", sn, resp.Status, want)
		}
	}
	if n := signer2.n.Load(); n != 0 {
		t.Errorf("restarted: %d signatures", n)
	}
}
