package ocsp_test

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"io"
	"math/big"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/shomei-pki/shomei/ocsp"
)

// checkAnswer parses an answer for serial of g and checks its status.
func checkAnswer(t testing.TB, g *generation, raw []byte, serial *big.Int, want int) *xocsp.Response {
	t.Helper()
	resp, err := xocsp.ParseResponseForCert(raw, g.leaf(serial), g.cert)
	if err != nil {
		t.Fatalf("serial %x: %v", serial, err)
	}
	if resp.Status != want {
		t.Fatalf("serial %x: status %d, want %d", serial, resp.Status, want)
	}
	return resp
}

// TestPresignedAnsweredWithoutSignature: once pre-signed, a request (SHA-1
// CertID as x/crypto/ocsp and openssl send it, no nonce, GET or POST) is
// answered from the store with no signature, by this responder and by a
// restarted one; a SHA-256 CertID is not pre-signed and costs one.
func TestPresignedAnsweredWithoutSignature(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newPresignEnv(t, func(c *ocsp.Config) { c.Metrics = reg }, nil)
	g := e.f.gen1
	if res := step(t, e.p); res.Signed != 3 || res.Stored != 3 {
		t.Fatalf("pre-signed %d, stored %d; want 3 (gen1 good and revoked, gen2 good)", res.Signed, res.Stored)
	}
	if n := e.signs(); n != 2 {
		t.Fatalf("gen1's responder made %d signatures to pre-sign its 2 certificates", n)
	}
	if gen2 := e.gen2.Signer.(*countingSigner).n.Load(); gen2 != 1 {
		t.Fatalf("gen2's responder made %d signatures, want 1", gen2)
	}
	for _, method := range []string{"GET", "POST"} {
		checkAnswer(t, g, serve(t, e.r, method, request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood)), nil).Body.Bytes(), serialGood, xocsp.Good)
		resp := checkAnswer(t, g, serve(t, e.r, method, request(t, g.cert, crypto.SHA1, nil, g.leaf(serialRevoked)), nil).Body.Bytes(), serialRevoked, xocsp.Revoked)
		if !resp.RevokedAt.Equal(revokedAt) || resp.RevocationReason != 1 {
			t.Errorf("revoked at %v reason %d", resp.RevokedAt, resp.RevocationReason)
		}
	}
	if n := e.signs(); n != 2 {
		t.Errorf("%d signatures after the requests; the pre-signed responses should have answered", n-2)
	}
	if hits := gather(t, reg, "shomei_ocsp_presigned_hits_total", ""); hits != 4 {
		t.Errorf("shomei_ocsp_presigned_hits_total %v, want 4: two reads of each serial, the second caching it (admit.go)", hits)
	}
	if misses := gather(t, reg, "shomei_ocsp_cache_misses_total", ""); misses != 0 {
		t.Errorf("shomei_ocsp_cache_misses_total %v", misses)
	}

	// A restarted process: nothing in its cache, everything in the store.
	r2, signer := e.restart(t)
	for _, sn := range []*big.Int{serialGood, serialRevoked} {
		want := map[bool]int{true: xocsp.Good, false: xocsp.Revoked}[sn == serialGood]
		checkAnswer(t, g, serve(t, r2, "GET", request(t, g.cert, crypto.SHA1, nil, g.leaf(sn)), nil).Body.Bytes(), sn, want)
	}
	g2 := e.f.gen2
	checkAnswer(t, g2, serve(t, r2, "POST", request(t, g2.cert, crypto.SHA1, nil, g2.leaf(serialGen2Good)), nil).Body.Bytes(), serialGen2Good, xocsp.Good)
	if n := signer.n.Load(); n != 0 {
		t.Errorf("the restarted responder signed %d responses", n)
	}
	// SHA-256 CertIDs are signed on demand (and cached).
	checkAnswer(t, g, serve(t, r2, "GET", request(t, g.cert, crypto.SHA256, nil, g.leaf(serialGood)), nil).Body.Bytes(), serialGood, xocsp.Good)
	if n := signer.n.Load(); n != 1 {
		t.Errorf("SHA-256 CertID: %d signatures, want 1", n)
	}
}

// TestPresignedOpenSSL: openssl ocsp's default request (SHA-1, here
// without a nonce) is the pre-signed CertID form, and it verifies the
// stored response.
func TestPresignedOpenSSL(t *testing.T) {
	needOpenSSL(t)
	e := newPresignEnv(t, func(c *ocsp.Config) { c.Now = time.Now }, func(p *ocsp.PresignConfig) { p.Now = time.Now })
	step(t, e.p)
	before := e.signs()
	srv := httptest.NewServer(e.r)
	defer srv.Close()
	dir := t.TempDir()
	g := e.f.gen1
	issuer := writePEM(t, dir, "issuer.pem", g.cert)
	for serial, want := range map[string]string{"1001": ": good", "1002": ": revoked"} {
		cert := writePEM(t, dir, "cert-"+serial+".pem", g.leaves[serial])
		out := openssl(t, "ocsp", "-issuer", issuer, "-cert", cert, "-no_nonce", "-url", srv.URL+"/ocsp", "-CAfile", issuer)
		if !strings.Contains(out, want) || !strings.Contains(out, "Response verify OK") {
			t.Errorf("openssl for %s:\n%s", serial, out)
		}
	}
	if n := e.signs() - before; n != 0 {
		t.Errorf("openssl's requests cost %d signatures", n)
	}
}

// TestPresignStatusChange: a revocation drops the pre-signed good
// response in its own transaction, so after Invalidate the next answer is
// revoked (signed on demand, R-R4); the pre-signer then stores the revoked
// response, which a restarted responder serves.
func TestPresignStatusChange(t *testing.T) {
	e := newPresignEnv(t, nil, nil)
	g := e.f.gen1
	step(t, e.p)
	der := request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood))
	checkAnswer(t, g, serve(t, e.r, "GET", der, nil).Body.Bytes(), serialGood, xocsp.Good)
	e.clock.Add(time.Minute)
	e.store.revoke(serialGood, e.clock.Now(), 4)
	e.r.Invalidate(serialGood)
	before := e.signs()
	checkAnswer(t, g, serve(t, e.r, "GET", der, nil).Body.Bytes(), serialGood, xocsp.Revoked)
	if n := e.signs() - before; n != 1 {
		t.Errorf("%d signatures for the revoked answer, want 1 (on demand)", n)
	}
	if res := step(t, e.p); res.Stored != 1 {
		t.Fatalf("the pre-signer stored %d responses after the revocation, want 1", res.Stored)
	}
	if rec := e.store.stored(serialGood); rec == nil || !rec.Revoked {
		t.Fatalf("stored %v, want the revoked response", rec)
	}
	r2, signer := e.restart(t)
	checkAnswer(t, g, serve(t, r2, "POST", der, nil).Body.Bytes(), serialGood, xocsp.Revoked)
	if n := signer.n.Load(); n != 0 {
		t.Errorf("restarted: %d signatures", n)
	}
}

// hookSigner runs hook before its first signature.
type hookSigner struct {
	crypto.Signer
	once sync.Once
	hook func()
}

func (s *hookSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.once.Do(s.hook)
	return s.Signer.Sign(r, digest, opts)
}

// TestPresignRevokedWhileSigning: the pre-signer read a good status, and
// the certificate is revoked while it signs. The good response is not
// stored (the revocation queued the serial again), and the answer is
// revoked.
func TestPresignRevokedWhileSigning(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newPresignEnv(t, nil, nil)
	g := e.f.gen1
	// Only serialGood is due.
	step(t, e.p)
	e.clock.Add(time.Minute)
	e.store.issue(g.cert, serialUnknown, e.clock.Now().Add(time.Hour))
	hooked := &hookSigner{Signer: e.signer1.Signer, hook: func() { e.store.revoke(serialUnknown, e.clock.Now(), 1) }}
	cfg := e.cfg
	cfg.Issuers = []*ocsp.Issuer{{Certificate: g.cert, Responder: g.responder, Signer: hooked}, e.gen2}
	r, err := ocsp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := e.presigner(t, r, func(p *ocsp.PresignConfig) { p.Metrics = reg })
	if res := step(t, p); res.Signed != 1 || res.Stored != 0 {
		t.Fatalf("signed %d, stored %d; want the good response signed and not stored", res.Signed, res.Stored)
	}
	if d := gather(t, reg, "shomei_ocsp_presign_discarded_total", ""); d != 1 {
		t.Errorf("shomei_ocsp_presign_discarded_total %v", d)
	}
	if e.store.stored(serialUnknown) != nil {
		t.Fatal("a good response was stored after the revocation")
	}
	checkAnswer(t, g, serve(t, r, "GET", request(t, g.cert, crypto.SHA1, nil, g.leaf(serialUnknown)), nil).Body.Bytes(), serialUnknown, xocsp.Revoked)
	if res := step(t, p); res.Stored != 1 || !e.store.stored(serialUnknown).Revoked {
		t.Fatalf("next step stored %d", res.Stored)
	}
}

// TestPresignRefresh: a response is signed again once RefreshAfter old,
// before it stops being served at half its validity; one the pre-signer
// did not refresh in time is not served (the request is signed); an
// expired certificate is dropped without a signature.
func TestPresignRefresh(t *testing.T) {
	e := newPresignEnv(t, nil, func(p *ocsp.PresignConfig) { p.RefreshAfter = 20 * time.Minute })
	g := e.f.gen1
	step(t, e.p)
	first := e.store.stored(serialGood)
	if got := first.RefreshAt.AsTime().Sub(first.ThisUpdate.AsTime()); got != 20*time.Minute {
		t.Fatalf("refresh %v after thisUpdate, want 20m", got)
	}
	e.clock.Add(20*time.Minute - time.Second)
	if res := step(t, e.p); res.Signed != 0 {
		t.Fatalf("%d signed before the refresh is due", res.Signed)
	}
	e.clock.Add(time.Second)
	if res := step(t, e.p); res.Signed != 3 {
		t.Fatalf("%d refreshed, want 3", res.Signed)
	}
	second := e.store.stored(serialGood)
	if !second.ThisUpdate.AsTime().Equal(e.clock.Now().Truncate(time.Second)) {
		t.Fatalf("refreshed thisUpdate %v, want now %v", second.ThisUpdate.AsTime(), e.clock.Now())
	}
	if n := e.store.queued(); n != 3 {
		t.Errorf("%d tasks queued, want one refresh per certificate", n)
	}
	// Served from the store: no signature, the refreshed thisUpdate.
	before := e.signs()
	der := request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood))
	resp := checkAnswer(t, g, serve(t, e.r, "GET", der, nil).Body.Bytes(), serialGood, xocsp.Good)
	if !resp.ThisUpdate.Equal(second.ThisUpdate.AsTime()) || e.signs() != before {
		t.Fatalf("thisUpdate %v, %d signatures", resp.ThisUpdate, e.signs()-before)
	}
	// Not refreshed: at half its validity it is no longer served.
	e.clock.Add(30 * time.Minute)
	r2, signer := e.restart(t)
	resp = checkAnswer(t, g, serve(t, r2, "GET", der, nil).Body.Bytes(), serialGood, xocsp.Good)
	if signer.n.Load() != 1 || !resp.ThisUpdate.Equal(e.clock.Now().Truncate(time.Second)) {
		t.Fatalf("stale pre-signed response: %d signatures, thisUpdate %v (now %v)", signer.n.Load(), resp.ThisUpdate, e.clock.Now())
	}
	// Past notAfter the certificates are dropped, unsigned.
	e.clock.Add(400 * 24 * time.Hour)
	before = e.signs()
	if res := step(t, e.p); res.Signed != 0 || e.store.stored(serialGood) != nil || e.store.queued() != 0 {
		t.Fatalf("expired: signed %d, stored %v, %d queued", res.Signed, e.store.stored(serialGood), e.store.queued())
	}
	if e.signs() != before {
		t.Error("an expired certificate was signed for")
	}
}

// TestPresignBudget: the pre-signer spends its own token bucket, counted
// in tokens on a pinned clock: Burst at once, then Budget a second.
func TestPresignBudget(t *testing.T) {
	e := newPresignEnv(t, nil, func(p *ocsp.PresignConfig) { p.Budget, p.Burst = 2, 5 })
	g := e.f.gen1
	for i := range 20 {
		e.store.issue(g.cert, big.NewInt(int64(0x5000+i)), e.clock.Now().Add(time.Hour))
	}
	total := func() int64 { return e.signs() + e.gen2.Signer.(*countingSigner).n.Load() }
	res := step(t, e.p)
	if res.Signed != 5 || total() != 5 || res.Wait <= 0 {
		t.Fatalf("first step: %d signed, %d signatures, wait %v; want the burst of 5 and a wait", res.Signed, total(), res.Wait)
	}
	if res := step(t, e.p); res.Signed != 0 {
		t.Fatalf("same instant: %d more signed", res.Signed)
	}
	e.clock.Add(time.Second)
	if res := step(t, e.p); res.Signed != 2 {
		t.Fatalf("a second later: %d signed, want 2", res.Signed)
	}
	e.clock.Add(time.Minute)
	if res := step(t, e.p); res.Signed != 5 || total() != 12 {
		t.Fatalf("a minute later: %d signed (total %d), want the burst of 5", res.Signed, total())
	}
	if n := e.store.queued(); n != 23 {
		t.Errorf("%d queued, want 23 (12 refreshes, 11 due)", n)
	}
}

// TestPresignResponderRenewal: a pre-signed response is signed by a
// responder key, not a certificate. It is sent with a certificate of that
// key valid over it: the earlier one after a renewal whose certificate
// starts later, or another process's certificate of the same key (CA
// processes sharing a store and a token). Once the issuer's responder has
// another key, it is not served.
func TestPresignResponderRenewal(t *testing.T) {
	e := newPresignEnv(t, nil, nil)
	g := e.f.gen1
	step(t, e.p)
	signedAt := e.clock.Now()
	certify := func(key crypto.Signer, notBefore time.Time, serial int64) *ocsp.Issuer {
		der, err := ocsp.NewResponderCertificate(g.cert, g.key, key.Public(), notBefore, notBefore.Add(48*time.Hour), big.NewInt(serial))
		if err != nil {
			t.Fatal(err)
		}
		rc, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return &ocsp.Issuer{Certificate: g.cert, Responder: rc, Signer: key}
	}
	e.clock.Add(10 * time.Minute)
	counting := &countingSigner{Signer: e.signer1.Signer}
	renewed := certify(counting, e.clock.Now(), 0x7001)
	if err := e.r.SetIssuers([]*ocsp.Issuer{renewed, e.gen2}); err != nil {
		t.Fatal(err)
	}
	der := request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood))
	resp := checkAnswer(t, g, serve(t, e.r, "GET", der, nil).Body.Bytes(), serialGood, xocsp.Good)
	if counting.n.Load() != 0 || !resp.Certificate.Equal(g.responder) {
		t.Fatalf("after a renewal: %d signatures, sent with responder %v; want the earlier certificate, which covers it", counting.n.Load(), resp.Certificate.SerialNumber)
	}

	// Another process's certificate of the same key, covering the response.
	cfg := e.cfg
	cfg.Issuers = []*ocsp.Issuer{certify(counting, signedAt.Add(-time.Minute), 0x7002), e.gen2}
	other, err := ocsp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp = checkAnswer(t, g, serve(t, other, "POST", der, nil).Body.Bytes(), serialGood, xocsp.Good)
	if counting.n.Load() != 0 || resp.Certificate.SerialNumber.Int64() != 0x7002 {
		t.Fatalf("another process: %d signatures, sent with responder %v", counting.n.Load(), resp.Certificate.SerialNumber)
	}

	// A new responder key: what the old one signed is not served.
	newKey := &countingSigner{Signer: mustECDSA(elliptic.P256())}
	if err := e.r.SetIssuers([]*ocsp.Issuer{certify(newKey, e.clock.Now(), 0x7003), e.gen2}); err != nil {
		t.Fatal(err)
	}
	der = request(t, g.cert, crypto.SHA1, nil, g.leaf(serialRevoked))
	resp = checkAnswer(t, g, serve(t, e.r, "GET", der, nil).Body.Bytes(), serialRevoked, xocsp.Revoked)
	if newKey.n.Load() != 1 || resp.Certificate.SerialNumber.Int64() != 0x7003 {
		t.Fatalf("after a new key: %d signatures by it, sent with %v", newKey.n.Load(), resp.Certificate.SerialNumber)
	}
}

// sha1RequestWithoutNULL is a request for serial of g whose SHA-1 CertID
// leaves the hashAlgorithm parameters out (RFC 5754 allows it; a client
// may send it), which is not the pre-signed form.
func sha1RequestWithoutNULL(t *testing.T, g *generation, serial *big.Int) []byte {
	t.Helper()
	one, err := ocsp.ParseRequest(request(t, g.cert, crypto.SHA1, nil, g.leaf(serial)))
	if err != nil {
		t.Fatal(err)
	}
	id := one.CertIDs[0]
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26})
						})
						b.AddASN1OctetString(id.IssuerNameHash)
						b.AddASN1OctetString(id.IssuerKeyHash)
						b.AddASN1BigInt(id.SerialNumber)
					})
				})
			})
		})
	})
	return b.BytesOrPanic()
}

// TestPresignedOnlyAsSigned: a pre-signed response is served only for the
// exact CertID it answers, and only if it is one the responder would sign
// now: not for a SHA-1 CertID without NULL parameters (its response must
// echo those bytes), nor once the configured validity is shorter than the
// stored response's.
func TestPresignedOnlyAsSigned(t *testing.T) {
	e := newPresignEnv(t, nil, nil)
	g := e.f.gen1
	step(t, e.p)
	before := e.signs()
	raw := serve(t, e.r, "POST", sha1RequestWithoutNULL(t, g, serialGood), nil).Body.Bytes()
	checkAnswer(t, g, raw, serialGood, xocsp.Good)
	if n := e.signs() - before; n != 1 {
		t.Errorf("SHA-1 CertID without NULL: %d signatures, want 1 (its own response)", n)
	}
	if e.store.reads != 0 {
		t.Errorf("the store was read %d times for a CertID never pre-signed", e.store.reads)
	}
	cfg := e.cfg
	cfg.Validity = 30 * time.Minute
	short, err := ocsp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	signs := e.signs()
	resp := checkAnswer(t, g, serve(t, short, "GET", request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood)), nil).Body.Bytes(), serialGood, xocsp.Good)
	if e.signs()-signs != 1 || resp.NextUpdate.Sub(resp.ThisUpdate) != 30*time.Minute {
		t.Errorf("validity shortened to 30m: %d signatures, response valid %v", e.signs()-signs, resp.NextUpdate.Sub(resp.ThisUpdate))
	}
}

// TestPresignerRun: Run works the queue off by itself, reports it in its
// metrics, refuses to run twice at once, and returns when its context
// ends.
func TestPresignerRun(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newPresignEnv(t, nil, func(p *ocsp.PresignConfig) { p.Metrics = reg })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.p.Run(ctx); close(done) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if gather(t, reg, "shomei_ocsp_presigned_total", "") == 3 && e.store.stored(serialGen2Good) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run stored %v responses in 30 s", gather(t, reg, "shomei_ocsp_presigned_total", ""))
		}
	}
	second := make(chan struct{})
	go func() { e.p.Run(ctx); close(second) }()
	select {
	case <-second:
	case <-time.After(30 * time.Second):
		t.Fatal("a second Run did not return at once")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
	if s := gather(t, reg, "shomei_ocsp_presign_signatures_total", ""); s != 3 {
		t.Errorf("shomei_ocsp_presign_signatures_total %v", s)
	}
	if b := gather(t, reg, "shomei_ocsp_presign_backlog", ""); b != 0 {
		t.Errorf("shomei_ocsp_presign_backlog %v", b)
	}
}

// TestPresignedCacheAdmission: a response read from the store enters the
// cache on its serial's second read, not its first: certificates asked
// about once (a uniform spread over millions) leave the cache to the hot
// ones.
func TestPresignedCacheAdmission(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newPresignEnv(t, func(c *ocsp.Config) { c.Metrics, c.CacheSize = reg, 64 }, nil)
	g := e.f.gen1
	const n = 200
	for i := range n {
		e.store.issue(g.cert, big.NewInt(0x9000+int64(i)), e.clock.Now().Add(time.Hour))
	}
	for res := step(t, e.p); res.Signed > 0; res = step(t, e.p) {
	}
	signs := e.signs()
	ask := func(sn *big.Int) {
		t.Helper()
		id, err := ocsp.ParseRequest(request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood)))
		if err != nil {
			t.Fatal(err)
		}
		id.CertIDs[0].SerialNumber = sn
		der, err := id.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if rec := serve(t, e.r, "POST", der, nil); rec.Code != 200 || rec.Body.Len() < 100 {
			t.Fatalf("serial %x: HTTP %d, %d bytes", sn, rec.Code, rec.Body.Len())
		}
	}
	for i := range n {
		ask(big.NewInt(0x9000 + int64(i)))
	}
	if c := gather(t, reg, "shomei_ocsp_cache_entries", ""); c > n/8 {
		t.Errorf("%v responses read once entered the cache (of %d)", c, n)
	}
	// The last one read, within the doorkeeper's current window: its
	// second read caches it.
	hot := big.NewInt(0x9000 + n - 1)
	ask(hot)
	reads := e.store.reads
	for range 5 {
		ask(hot)
	}
	if e.store.reads != reads {
		t.Errorf("a serial read twice was not cached: %d more store reads", e.store.reads-reads)
	}
	if e.signs() != signs {
		t.Errorf("%d signatures answering pre-signed certificates", e.signs()-signs)
	}
}
