package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/testenv/open"
	"github.com/shomei-pki/shomei/ocsp"
	"github.com/shomei-pki/shomei/ocsp/responders"
	"github.com/shomei-pki/shomei/propagation"
	"github.com/shomei-pki/shomei/repository"
)

// reloaded stands in for the CA's Reload (rotation's, not this file's):
// the CA of the moment, made anew over the same store and token after the
// test records a generation. It certifies the CA's own responders and
// answers OCSP as that CA.
type reloaded struct{ ca atomic.Pointer[ca.CA] }

func (r *reloaded) CertifyResponder(ctx context.Context, issuer string, responder crypto.Signer, notBefore, notAfter time.Time) ([]byte, error) {
	return ca.LocalResponderCertifier{CA: r.ca.Load()}.CertifyResponder(ctx, issuer, responder, notBefore, notAfter)
}

func (r *reloaded) Status(ctx context.Context, is *ocsp.Issuer, serial *big.Int) (ocsp.Status, error) {
	return r.ca.Load().OCSPSource().Status(ctx, is, serial)
}

// states is the store with some generations' states overridden: what the
// store says once rotation's Retire has run.
type states struct {
	*store.Store
	mu       sync.Mutex
	override map[string]storev1.KeyState // by ca.IssuerName
}

func (s *states) set(name string, st storev1.KeyState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.override[name] = st
}

func (s *states) Issuers() ([]*storev1.IssuerKey, error) {
	keys, err := s.Store.Issuers()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if st, ok := s.override[ca.IssuerName(k.Profile, k.Generation)]; ok {
			k.State = st
		}
	}
	return keys, err
}

// retiredSet records what generations tell the CRL publisher.
type retiredSet struct {
	mu  sync.Mutex
	got []crl.Generation
}

func (r *retiredSet) SetRetired(g []crl.Generation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = slices.Clone(g)
}

func (r *retiredSet) get() []crl.Generation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

// TestGenerationsLive: a second SIGN generation recorded while everything
// runs is published on notification, without a restart — its certificate
// and both link certificates at /issuers/ over HTTP, a delegated OCSP
// responder certified by its own key answering for it, the first
// generation still answered — and syncing again, even concurrently, changes
// nothing; once the first generation is retired it leaves the responder
// and CRL publishing but keeps its certificate at /issuers/ (R-K1).
func TestGenerationsLive(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tok := open.Token(t, "e2e-generations")
	st := open.Store(t)
	discard := slog.New(slog.DiscardHandler)
	if _, err := (&issuer.Ceremony{Token: tok, Store: st, Config: issuer.DefaultConfig(), Operator: "test", Log: discard}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	newCA := func() *ca.CA {
		c, err := ca.New(ctx, ca.Config{Store: st, Token: tok, Profile: profile.Config{CPSURL: "http://shomei.test/cps"},
			CRLBaseURL: "http://shomei.test/crl", Log: discard})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	current := &reloaded{}
	current.ca.Store(newCA())
	recs := &states{Store: st, override: map[string]storev1.KeyState{}}
	all, err := issuer.Load(recs)
	if err != nil {
		t.Fatal(err)
	}
	g1 := all[0]
	if g1.Profile != storev1.Profile_PROFILE_SIGN || g1.Generation != 1 {
		t.Fatalf("first issuer is %v generation %d", g1.Profile, g1.Generation)
	}
	keeper, err := responders.New(responders.Config{Token: tok, Targets: responderTargets(all), KeyPrefix: responderKeyPrefix,
		Certifier: current, Store: st, Log: discard})
	if err != nil {
		t.Fatal(err)
	}
	issuers, next, err := keeper.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	responder, err := ocsp.New(ocsp.Config{Issuers: issuers, Source: current, Log: discard})
	if err != nil {
		t.Fatal(err)
	}
	go keeper.Maintain(ctx, responder, next)
	files := repository.NewIssuers()
	crls := &retiredSet{}
	changed := propagation.NewNotifier()
	gens, err := newGenerations(generationsConfig{Records: recs, Keeper: keeper, Responder: responder, CRL: crls,
		Files: files, Changed: changed, Log: discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := gens.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); gens.Run(ctx) }()
	defer func() { cancel(); <-done }()
	mux := http.NewServeMux()
	mux.Handle(issuersRoute, files)
	srv := httptest.NewServer(responder.InFront(mux))
	defer srv.Close()

	fetch := func(name string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/issuers/" + name)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	pemOf := func(c []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c}) }
	// askOCSP answers for serial 1 of issuerCert: its certificate status,
	// or the OCSP error status; and the responder certificate.
	askOCSP := func(issuerCert *x509.Certificate) (string, *x509.Certificate) {
		t.Helper()
		req, err := xocsp.CreateRequest(&x509.Certificate{SerialNumber: big.NewInt(1)}, issuerCert, &xocsp.RequestOptions{Hash: crypto.SHA256})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(srv.URL+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := xocsp.ParseResponse(body, issuerCert)
		if re, ok := err.(xocsp.ResponseError); ok {
			return re.Status.String(), nil
		}
		if err != nil {
			t.Fatalf("OCSP response: %v", err)
		}
		return fmt.Sprint(got.Status), got.Certificate
	}
	unknown := fmt.Sprint(xocsp.Unknown)

	if code, body := fetch("shomei-sign-g1.pem"); code != http.StatusOK || !bytes.Equal(body, pemOf(g1.CertificateDer)) {
		t.Fatalf("/issuers/shomei-sign-g1.pem: %d", code)
	}
	if code, _ := fetch("shomei-sign-g2.pem"); code != http.StatusNotFound {
		t.Fatalf("/issuers/shomei-sign-g2.pem before the rotation: %d", code)
	}

	// A rotation records sign-g2 (ACTIVE; sign-g1 SUPERSEDED) while
	// everything runs.
	g1signer, err := tok.SignerFor(ctx, hsm.KeyRef{Label: g1.KeyLabel, ID: g1.KeyId}, g1.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := open.IssuerGeneration(ctx, tok, issuer.KeyLabel(g1.Profile, 2), g1.Certificate, g1signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddIssuerKey(&storev1.IssuerKey{Profile: g1.Profile, Generation: 2, KeyLabel: g2.Ref.Label, KeyId: g2.Ref.ID,
		KeyAlgorithm: string(hsm.RSA2048), CertificateDer: g2.Certificate.Raw, State: storev1.KeyState_KEY_STATE_ACTIVE,
		TokenLabel: tok.Label(), LinkNewWithOldDer: g2.NewWithOld.Raw, LinkOldWithNewDer: g2.OldWithNew.Raw},
		[]*storev1.AuditRecord{{Actor: "test", Action: "issuer.rotate"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := askOCSP(g2.Certificate); got != xocsp.Unauthorized.String() {
		t.Fatalf("OCSP for sign-g2 before it is published: %s, want unauthorized", got)
	}
	current.ca.Store(newCA())
	changed.Notify() // ca.Config.OnIssuersChanged
	deadline := time.Now().Add(30 * time.Second)
	for len(responder.Issuers()) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}

	for name, der := range map[string][]byte{
		"shomei-sign-g2":       g2.Certificate.Raw,
		"shomei-sign-g2-by-g1": g2.NewWithOld.Raw,
		"shomei-sign-g1-by-g2": g2.OldWithNew.Raw,
	} {
		if code, body := fetch(name + ".pem"); code != http.StatusOK || !bytes.Equal(body, pemOf(der)) {
			t.Errorf("/issuers/%s.pem after the rotation: %d", name, code)
		}
		if code, body := fetch(name + ".cer"); code != http.StatusOK || !bytes.Equal(body, der) {
			t.Errorf("/issuers/%s.cer after the rotation: %d", name, code)
		}
	}
	// A relying party holding only sign-g1 trusts sign-g2's key through
	// the NewWithOld link.
	if _, body := fetch("shomei-sign-g2-by-g1.cer"); len(body) > 0 {
		link, err := x509.ParseCertificate(body)
		if err != nil {
			t.Fatal(err)
		}
		if err := link.CheckSignatureFrom(g1.Certificate); err != nil || !link.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(g2.Certificate.PublicKey) {
			t.Errorf("the NewWithOld link does not certify sign-g2's key under sign-g1: %v", err)
		}
	}
	if _, body := fetch(repository.BundleFile); bytes.Count(body, []byte("BEGIN CERTIFICATE")) != 3 {
		t.Errorf("%s holds %d certificates, want the 3 generations' (no links)", repository.BundleFile, bytes.Count(body, []byte("BEGIN CERTIFICATE")))
	}
	status, rc := askOCSP(g2.Certificate)
	if status != unknown || rc == nil {
		t.Fatalf("OCSP for a serial of sign-g2 after it is published: %s, want a signed unknown", status)
	}
	if err := ocsp.CheckResponder(g2.Certificate, rc); err != nil {
		t.Errorf("sign-g2's OCSP responder: %v", err)
	}
	if status, rc := askOCSP(g1.Certificate); status != unknown || rc == nil || ocsp.CheckResponder(g1.Certificate, rc) != nil {
		t.Errorf("OCSP for sign-g1 after the rotation: %s", status)
	}

	// Again, and concurrently: nothing changes.
	before := responder.Issuers()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := gens.Sync(ctx); err != nil {
				t.Error(err)
			}
		})
		changed.Notify()
	}
	wg.Wait()
	if after := responder.Issuers(); len(after) != len(before) || !slices.EqualFunc(before, after, func(a, b *ocsp.Issuer) bool { return a.Responder.Equal(b.Responder) }) {
		t.Error("syncing again changed the responders")
	}

	// sign-g1 retired: out of the responder and CRL publishing, still at
	// /issuers/.
	recs.set("sign-g1", storev1.KeyState_KEY_STATE_RETIRED)
	changed.Notify()
	deadline = time.Now().Add(30 * time.Second)
	for len(responder.Issuers()) != 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got, _ := askOCSP(g1.Certificate); got != xocsp.Unauthorized.String() {
		t.Errorf("OCSP for retired sign-g1: %s, want unauthorized", got)
	}
	if got, _ := askOCSP(g2.Certificate); got != unknown {
		t.Errorf("OCSP for sign-g2 after sign-g1 retired: %s", got)
	}
	if got := crls.get(); len(got) != 1 || got[0] != (crl.Generation{Profile: g1.Profile, Generation: 1}) {
		t.Errorf("CRL publisher told %v retired, want sign generation 1", got)
	}
	if code, _ := fetch("shomei-sign-g1.pem"); code != http.StatusOK {
		t.Errorf("/issuers/shomei-sign-g1.pem after retirement: %d, want still served", code)
	}
}
