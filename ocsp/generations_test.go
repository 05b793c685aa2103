package ocsp_test

import (
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/shomei-pki/shomei/ocsp"
)

// outcome is what a response says of one certificate: its status, or the
// OCSP error (unauthorized, internalError, …) that answered instead.
type outcome struct {
	status    int
	errStatus xocsp.ResponseStatus // 0: a successful response
	responder *x509.Certificate
}

func ask(t testing.TB, r *ocsp.Responder, g *generation, serial *big.Int, nonce []byte) outcome {
	t.Helper()
	der := request(t, g.cert, crypto.SHA256, nonce, g.leaf(serial))
	rec := serve(t, r, "POST", der, nil)
	got, err := xocsp.ParseResponseForCert(rec.Body.Bytes(), g.leaf(serial), g.cert)
	var re xocsp.ResponseError
	if errors.As(err, &re) {
		return outcome{errStatus: re.Status}
	}
	if err != nil {
		t.Errorf("parsing the response: %v", err)
		return outcome{errStatus: xocsp.InternalError}
	}
	return outcome{status: got.Status, responder: got.Certificate}
}

func keyIDOf(c *x509.Certificate) string { return hex.EncodeToString(c.SubjectKeyId) }

// TestSetIssuersAddsAndRemovesGenerations: a generation added to a running
// responder is answered for at once, by its own responder; one removed is
// unauthorized; the generations kept keep their cached responses and
// their metric labels, and Invalidate reaches the added generation's
// cached responses too (R-K1).
func TestSetIssuersAddsAndRemovesGenerations(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(c *ocsp.Config) {
		c.Metrics = reg
		c.Issuers = c.Issuers[:1] // gen1 only, as before a rotation
	})
	const notAfter = "shomei_ocsp_responder_not_after_timestamp_seconds"
	f := e.f
	if got := ask(t, e.r, f.gen2, serialGen2Good, nil); got.errStatus != xocsp.Unauthorized {
		t.Fatalf("gen2 before it is added: %+v, want unauthorized", got)
	}
	if got := ask(t, e.r, f.gen1, serialGood, nil); got.status != xocsp.Good {
		t.Fatalf("gen1: %+v", got)
	}
	signs := e.signs()

	if err := e.r.SetIssuers([]*ocsp.Issuer{e.gen1, e.gen2}); err != nil {
		t.Fatalf("adding gen2: %v", err)
	}
	got := ask(t, e.r, f.gen2, serialGen2Good, nil)
	if got.status != xocsp.Good || got.responder == nil || !got.responder.Equal(f.gen2.responder) {
		t.Fatalf("gen2 after it is added: %+v, want good signed by gen2's responder", got)
	}
	if got := ask(t, e.r, f.gen1, serialGood, nil); got.status != xocsp.Good || e.signs() != signs {
		t.Errorf("gen1 after adding gen2: %+v, %d signatures, want its cached response", got, e.signs()-signs)
	}
	for _, g := range []*generation{f.gen1, f.gen2} {
		if v := gather(t, reg, notAfter, keyIDOf(g.cert)); v != float64(g.responder.NotAfter.Unix()) {
			t.Errorf("%s{issuer=%s} = %v, want %d", notAfter, keyIDOf(g.cert), v, g.responder.NotAfter.Unix())
		}
	}

	// The added generation's cached responses are invalidated too.
	e.source.set(e.gen2, serialGen2Good, ocsp.Status{Status: ocsp.Revoked, RevokedAt: e.clock.Now(), Reason: 1})
	if got := ask(t, e.r, f.gen2, serialGen2Good, nil); got.status != xocsp.Good {
		t.Fatalf("gen2 before Invalidate: %+v, want the cached good", got)
	}
	e.r.Invalidate(serialGen2Good)
	if got := ask(t, e.r, f.gen2, serialGen2Good, nil); got.status != xocsp.Revoked {
		t.Errorf("gen2 after Invalidate: %+v, want revoked", got)
	}

	// gen1 retired: no longer answered, its label gone; gen2 unchanged.
	if err := e.r.SetIssuers([]*ocsp.Issuer{e.gen2}); err != nil {
		t.Fatalf("removing gen1: %v", err)
	}
	if got := ask(t, e.r, f.gen1, serialGood, nil); got.errStatus != xocsp.Unauthorized {
		t.Errorf("gen1 after it is removed: %+v, want unauthorized", got)
	}
	if got := ask(t, e.r, f.gen2, serialGen2Good, nil); got.status != xocsp.Revoked {
		t.Errorf("gen2 after removing gen1: %+v", got)
	}
	if v := gather(t, reg, notAfter, keyIDOf(f.gen1.cert)); v != 0 {
		t.Errorf("%s{issuer=%s} still reported after its generation was removed", notAfter, keyIDOf(f.gen1.cert))
	}
	if v := gather(t, reg, notAfter, keyIDOf(f.gen2.cert)); v != float64(f.gen2.responder.NotAfter.Unix()) {
		t.Errorf("%s{issuer=%s} = %v after removing gen1", notAfter, keyIDOf(f.gen2.cert), v)
	}

	// Refused sets change nothing.
	for name, set := range map[string][]*ocsp.Issuer{
		"empty":           nil,
		"duplicate":       {e.gen2, e.gen2},
		"wrong signer":    {{Certificate: f.gen2.cert, Responder: f.gen2.responder, Signer: mustECDSA(elliptic.P256())}},
		"nil certificate": {{Responder: f.gen2.responder, Signer: e.gen2.Signer}},
		"nil issuer":      {nil},
	} {
		if err := e.r.SetIssuers(set); err == nil {
			t.Errorf("%s: SetIssuers accepted it", name)
		}
	}
	if got := ask(t, e.r, f.gen2, serialGen2Good, nil); got.status != xocsp.Revoked {
		t.Errorf("gen2 after refused SetIssuers: %+v", got)
	}
}

// TestSetIssuersInFlight: a request that started with a generation in the
// set finishes with it, signed by its responder, even when the generation
// is removed while the Source answers.
func TestSetIssuersInFlight(t *testing.T) {
	e := newEnv(t, nil)
	gate := make(chan struct{})
	e.source.gate = gate
	done := make(chan outcome)
	go func() { done <- ask(t, e.r, e.f.gen2, serialGen2Good, []byte("in flight")) }()
	for e.source.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := e.r.SetIssuers([]*ocsp.Issuer{e.gen1}); err != nil {
		t.Fatal(err)
	}
	close(gate)
	got := <-done
	if got.status != xocsp.Good || got.responder == nil || !got.responder.Equal(e.f.gen2.responder) {
		t.Errorf("in-flight request of a removed generation: %+v, want good signed by its responder", got)
	}
}

// TestSetIssuersConcurrent: while the set changes (gen2 added, removed,
// gen1's responder renewed), every request for gen1 — always in the set —
// succeeds, and gen2's are answered or unauthorized, never internalError.
// Run with -race.
func TestSetIssuersConcurrent(t *testing.T) {
	e := newEnv(t, func(c *ocsp.Config) { c.SignatureBudget = -1 })
	f := e.f
	now := e.clock.Now()
	renewedKey := mustECDSA(elliptic.P256())
	rder, err := ocsp.NewResponderCertificate(f.gen1.cert, f.gen1.key, renewedKey.Public(), now.Add(-time.Minute), now.Add(48*time.Hour), big.NewInt(0x78))
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := x509.ParseCertificate(rder)
	if err != nil {
		t.Fatal(err)
	}
	gen1b := &ocsp.Issuer{Certificate: f.gen1.cert, Responder: renewed, Signer: renewedKey}
	e.source.set(gen1b, serialGood, ocsp.Status{Status: ocsp.Good})
	sets := [][]*ocsp.Issuer{{e.gen1}, {e.gen1, e.gen2}, {gen1b, e.gen2}, {gen1b}, {e.gen2, e.gen1}}

	var stop atomic.Bool
	var wg sync.WaitGroup
	var answered2 atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				var nonce []byte
				if i%3 == 0 {
					nonce = []byte{byte(w), byte(i)}
				}
				if got := ask(t, e.r, f.gen1, serialGood, nonce); got.status != xocsp.Good || got.errStatus != 0 {
					t.Errorf("gen1 while the set changes: %+v", got)
					return
				}
				switch got := ask(t, e.r, f.gen2, serialGen2Good, nonce); {
				case got.errStatus == xocsp.Unauthorized:
				case got.errStatus == 0 && got.status == xocsp.Good:
					answered2.Add(1)
				default:
					t.Errorf("gen2 while the set changes: %+v", got)
					return
				}
			}
		})
	}
	for i := range 200 {
		if err := e.r.SetIssuers(sets[i%len(sets)]); err != nil {
			t.Error(err)
			break
		}
		if i%20 == 0 {
			e.r.Invalidate(serialGood)
			e.r.Invalidate(serialGen2Good)
		}
		time.Sleep(100 * time.Microsecond)
	}
	stop.Store(true)
	wg.Wait()
	if answered2.Load() == 0 {
		t.Error("gen2 was never answered while it was in the set")
	}
}
