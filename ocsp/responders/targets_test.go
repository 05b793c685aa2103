package responders_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/testenv/open"
	"github.com/shomei-pki/shomei/ocsp"
	"github.com/shomei-pki/shomei/ocsp/responders"
)

// generations certifies responders as the CA does, each with the issuer
// key generation asked for; a generation it does not know yet (the CA has
// not reloaded) is refused.
type generations struct {
	mu    sync.Mutex
	by    map[string]*issuerCA
	asked map[string]int
}

func (g *generations) add(name string, ca *issuerCA) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.by[name] = ca
}

func (g *generations) count(name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.asked[name]
}

func (g *generations) CertifyResponder(_ context.Context, issuer string, responder crypto.Signer, notBefore, notAfter time.Time) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ca := g.by[issuer]
	if ca == nil {
		return nil, fmt.Errorf("no issuer %q", issuer)
	}
	g.asked[issuer]++
	ca.n++
	return ocsp.NewResponderCertificate(ca.cert, ca.key, responder.Public(), notBefore, notAfter, big.NewInt(int64(1000+ca.n)))
}

// answers is an ocsp.Source that knows nothing: the keeper tests look at
// the responder's issuer set.
type answers struct{}

func (answers) Status(context.Context, *ocsp.Issuer, *big.Int) (ocsp.Status, error) {
	return ocsp.Status{Status: ocsp.Unknown}, nil
}

// served is the responder certificate of each issuer the responder
// answers for, by issuer certificate.
func served(r *ocsp.Responder) map[*x509.Certificate]*x509.Certificate {
	out := map[*x509.Certificate]*x509.Certificate{}
	for _, is := range r.Issuers() {
		out[is.Certificate] = is.Responder
	}
	return out
}

// TestKeeperTargetsLive: a generation added to a running keeper gets its
// responder key made in the HSM and certified by its own issuer, and the
// responder answers for it; while its issuer cannot certify yet, the
// others keep serving and it is retried within a minute; each target is
// renewed on its own schedule; a generation removed leaves the responder
// (its key stays in the HSM); Maintain applies a change at once.
func TestKeeperTargetsLive(t *testing.T) {
	ctx := context.Background()
	tok := open.Token(t, tokenLabel)
	now := time.Now().Truncate(time.Second)
	start := now
	var clockMu sync.Mutex
	clock := func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		return now
	}
	set := func(at time.Time) {
		clockMu.Lock()
		defer clockMu.Unlock()
		now = at
	}
	g1, g2 := newIssuer(t, now), newIssuer(t, now)
	cas := &generations{by: map[string]*issuerCA{"sign-g1": g1}, asked: map[string]int{}}
	t1 := responders.Target{Name: "sign-g1", Certificate: g1.cert}
	t2 := responders.Target{Name: "sign-g2", Certificate: g2.cert}
	k, err := responders.New(responders.Config{
		Token: tok, Targets: []responders.Target{t1}, KeyPrefix: "test-live", Certifier: cas,
		Store: &memStore{m: map[string][]byte{}}, Validity: 10 * time.Hour, RenewBefore: 4 * time.Hour, Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	issuers, _, err := k.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ocsp.New(ocsp.Config{Issuers: issuers, Source: answers{}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	first := served(r)[g1.cert]

	// sign-g2 is recorded, but the certifier does not know it yet.
	set(start.Add(3 * time.Hour))
	if err := k.SetTargets([]responders.Target{t1, t2}); err != nil {
		t.Fatal(err)
	}
	next, err := k.Refresh(ctx, r)
	if err == nil {
		t.Fatal("Refresh: no error while sign-g2 cannot be certified")
	}
	if got := served(r); len(got) != 1 || !got[g1.cert].Equal(first) {
		t.Fatalf("while sign-g2 fails: the responder serves %d issuers, want sign-g1 with its responder", len(got))
	}
	if want := clock().Add(time.Minute); next.After(want) {
		t.Errorf("next pass at %v while sign-g2 fails, want within a minute (%v)", next, want)
	}

	// The CA knows it now: the next pass certifies it with g2.
	cas.add("sign-g2", g2)
	if next, err = k.Refresh(ctx, r); err != nil {
		t.Fatal(err)
	}
	got := served(r)
	if len(got) != 2 || got[g2.cert] == nil {
		t.Fatalf("after sign-g2 is certifiable: %d issuers served, sign-g2 %v", len(got), got[g2.cert] != nil)
	}
	if err := ocsp.CheckResponder(g2.cert, got[g2.cert]); err != nil {
		t.Errorf("sign-g2's responder: %v", err)
	}
	if !got[g1.cert].Equal(first) || cas.count("sign-g1") != 1 {
		t.Errorf("adding sign-g2 re-certified sign-g1 (%d certifications)", cas.count("sign-g1"))
	}
	if _, ok := r.Issuers()[0].Signer.(*hsm.Signer); !ok {
		t.Errorf("responder signer %T, not an HSM key", r.Issuers()[0].Signer)
	}
	if want := first.NotAfter.Add(-4 * time.Hour); !next.Equal(want) {
		t.Errorf("next pass %v, want sign-g1's renewal %v", next, want)
	}
	second := got[g2.cert]

	// sign-g1's renewal is due, not sign-g2's (certified 3 h later).
	set(next.Add(time.Second))
	if next, err = k.Refresh(ctx, r); err != nil {
		t.Fatal(err)
	}
	got = served(r)
	if got[g1.cert].Equal(first) || !got[g2.cert].Equal(second) {
		t.Fatalf("at sign-g1's renewal: sign-g1 renewed %v, sign-g2 kept %v", !got[g1.cert].Equal(first), got[g2.cert].Equal(second))
	}
	if want := second.NotAfter.Add(-4 * time.Hour); !next.Equal(want) {
		t.Errorf("next pass %v, want sign-g2's renewal %v", next, want)
	}
	set(next.Add(time.Second))
	if _, err = k.Refresh(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := served(r); got[g2.cert].Equal(second) || cas.count("sign-g2") != 2 {
		t.Errorf("at sign-g2's renewal: not renewed (%d certifications)", cas.count("sign-g2"))
	}

	// Maintain: removing sign-g1 (retired) applies at once.
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); k.Maintain(mctx, r, clock().Add(time.Hour)) }()
	defer func() { cancel(); <-done }()
	if err := k.SetTargets([]responders.Target{t2}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(r.Issuers()) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := served(r); len(got) != 1 || got[g2.cert] == nil {
		t.Fatalf("after removing sign-g1: %d issuers served, sign-g2 %v", len(got), got[g2.cert] != nil)
	}
	keys, err := tok.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]int{}
	for _, key := range keys {
		labels[key.Label]++
	}
	if labels["test-live-sign-g1"] != 1 || labels["test-live-sign-g2"] != 1 {
		t.Errorf("responder keys in the HSM: %v, want one each of test-live-sign-g1 (kept) and -g2", labels)
	}
}

// TestSetTargetsRefuses: a bad list is refused and changes nothing.
func TestSetTargetsRefuses(t *testing.T) {
	tok := open.Token(t, tokenLabel)
	ca := newIssuer(t, time.Now())
	t1 := responders.Target{Name: "sign-g1", Certificate: ca.cert}
	k, err := responders.New(responders.Config{Token: tok, Targets: []responders.Target{t1}, KeyPrefix: "x", Certifier: ca, Store: &memStore{}})
	if err != nil {
		t.Fatal(err)
	}
	for name, targets := range map[string][]responders.Target{
		"empty":          nil,
		"no name":        {{Certificate: ca.cert}},
		"no certificate": {{Name: "sign-g2"}},
		"named twice":    {t1, t1},
	} {
		if err := k.SetTargets(targets); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got := k.Targets(); len(got) != 1 || got[0].Name != "sign-g1" {
		t.Errorf("targets after refused lists: %v", got)
	}
}

// TestKeeperConcurrentTargets: SetTargets from several goroutines while
// Maintain and Refresh run never makes two keys for one generation, and the
// responder ends with the last list. Run with -race.
func TestKeeperConcurrentTargets(t *testing.T) {
	ctx := context.Background()
	tok := open.Token(t, tokenLabel)
	now := time.Now()
	cas := &generations{by: map[string]*issuerCA{}, asked: map[string]int{}}
	var targets []responders.Target
	for i := 1; i <= 3; i++ {
		ca := newIssuer(t, now)
		name := fmt.Sprintf("auth-g%d", i)
		cas.add(name, ca)
		targets = append(targets, responders.Target{Name: name, Certificate: ca.cert})
	}
	k, err := responders.New(responders.Config{Token: tok, Targets: targets[:1], KeyPrefix: "test-conc",
		Certifier: cas, Store: &memStore{m: map[string][]byte{}}})
	if err != nil {
		t.Fatal(err)
	}
	issuers, next, err := k.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ocsp.New(ocsp.Config{Issuers: issuers, Source: answers{}})
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); k.Maintain(mctx, r, next) }()
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 10 {
				if err := k.SetTargets(targets[:1+(w+i)%3]); err != nil {
					t.Error(err)
				}
				if _, err := k.Refresh(ctx, r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := k.SetTargets(targets); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Refresh(ctx, r); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if got := len(r.Issuers()); got != 3 {
		t.Errorf("%d issuers served after the last SetTargets, want 3", got)
	}
	keys, err := tok.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]int{}
	for _, key := range keys {
		labels[key.Label]++
	}
	for _, tg := range targets {
		if n := labels["test-conc-"+tg.Name]; n != 1 {
			t.Errorf("%d keys for %s, want 1", n, tg.Name)
		}
	}
}
