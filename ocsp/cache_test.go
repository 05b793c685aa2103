package ocsp_test

import (
	"bytes"
	"crypto"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/shomei-pki/shomei/ocsp"
)

// serve sends der to the responder in-process, by GET unless method says
// otherwise.
func serve(t testing.TB, r http.Handler, method string, der []byte, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if method == http.MethodPost {
		req = httptest.NewRequest(method, "/ocsp", bytes.NewReader(der))
	} else {
		req = httptest.NewRequest(method, getURL("", der), nil)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec
}

func statusOf(t testing.TB, e *env, raw []byte, serial *big.Int) int {
	t.Helper()
	got, err := xocsp.ParseResponseForCert(raw, e.f.gen1.leaf(serial), e.f.gen1.cert)
	if err != nil {
		t.Fatal(err)
	}
	return got.Status
}

func TestCachingHeaders(t *testing.T) {
	e := newEnv(t, nil)
	der := request(t, e.f.gen1.cert, crypto.SHA256, nil, e.f.gen1.leaf(serialGood))
	first := serve(t, e.r, "GET", der, nil)
	now := e.clock.Now()
	h := first.Header()
	want := map[string]string{
		"Cache-Control": "max-age=3600, public, no-transform, must-revalidate",
		"Last-Modified": now.UTC().Format(http.TimeFormat),
		"Expires":       now.Add(time.Hour).UTC().Format(http.TimeFormat),
		"Content-Type":  "application/ocsp-response",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, h.Get(k), v)
		}
	}
	etag := h.Get("ETag")
	if len(etag) != 34 || etag[0] != '"' {
		t.Fatalf("ETag %q", etag)
	}
	e.clock.Add(10 * time.Minute)
	tests := []struct {
		name   string
		method string
		inm    string
		code   int
	}{
		{name: "same ETag", method: "GET", inm: etag, code: http.StatusNotModified},
		{name: "weak ETag in a list", method: "GET", inm: `"abc", W/` + etag, code: http.StatusNotModified},
		{name: "any", method: "GET", inm: "*", code: http.StatusNotModified},
		{name: "HEAD", method: "HEAD", inm: etag, code: http.StatusNotModified},
		{name: "other ETag", method: "GET", inm: `"0123"`, code: http.StatusOK},
		{name: "POST ignores If-None-Match", method: "POST", inm: etag, code: http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(t, e.r, tc.method, der, http.Header{"If-None-Match": {tc.inm}})
			if rec.Code != tc.code {
				t.Fatalf("HTTP %d, want %d", rec.Code, tc.code)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "max-age=3000, public, no-transform, must-revalidate" {
				t.Errorf("Cache-Control %q 10 minutes later", cc)
			}
			if rec.Header().Get("ETag") != etag {
				t.Errorf("ETag %q, want %q", rec.Header().Get("ETag"), etag)
			}
			if tc.code == http.StatusNotModified && rec.Body.Len() != 0 {
				t.Errorf("304 with a body")
			}
			if tc.code == http.StatusOK && !bytes.Equal(rec.Body.Bytes(), first.Body.Bytes()) {
				t.Errorf("the cached response changed")
			}
		})
	}

	t.Run("MaxAge", func(t *testing.T) {
		e := newEnv(t, func(c *ocsp.Config) { c.MaxAge = 5 * time.Minute })
		rec := serve(t, e.r, "GET", der, nil)
		if cc := rec.Header().Get("Cache-Control"); cc != "max-age=300, public, no-transform, must-revalidate" {
			t.Errorf("Cache-Control %q", cc)
		}
		if ex := rec.Header().Get("Expires"); ex != e.clock.Now().Add(time.Hour).UTC().Format(http.TimeFormat) {
			t.Errorf("Expires %q is not nextUpdate", ex)
		}
	})
}

// TestCacheReuse counts signatures: a cacheable response is signed once
// per (issuer, CertID hash, serial) and half validity, for GET and POST
// alike; nonce responses every time (within the signature budget), unknown
// ones once per UnknownReuse.
func TestCacheReuse(t *testing.T) {
	e := newEnv(t, nil)
	g := e.f.gen1
	sha1Good := request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood))
	steps := []struct {
		name    string
		method  string
		der     []byte
		times   int
		advance time.Duration
		signs   int64
	}{
		{name: "GET SHA-1 five times", method: "GET", der: sha1Good, times: 5, signs: 1},
		{name: "POST of the same", method: "POST", der: sha1Good, times: 3, signs: 1},
		{name: "SHA-256 CertID is another response", method: "GET", der: request(t, g.cert, crypto.SHA256, nil, g.leaf(serialGood)), times: 3, signs: 2},
		{name: "nonce: signed every time", method: "POST", der: request(t, g.cert, crypto.SHA1, []byte("nonce"), g.leaf(serialGood)), times: 3, signs: 5},
		{name: "unknown: once per UnknownReuse", method: "GET", der: request(t, g.cert, crypto.SHA1, nil, g.leaf(serialUnknown)), times: 2, signs: 6},
		{name: "revoked: once", method: "GET", der: request(t, g.cert, crypto.SHA1, nil, g.leaf(serialRevoked)), times: 4, signs: 7},
		{name: "29 minutes later: still cached", method: "GET", der: sha1Good, advance: 29 * time.Minute, times: 2, signs: 7},
		{name: "31 minutes later: signed again", method: "GET", der: sha1Good, advance: 2 * time.Minute, times: 2, signs: 8},
	}
	for _, s := range steps {
		e.clock.Add(s.advance)
		for range s.times {
			rec := serve(t, e.r, s.method, s.der, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("%s: HTTP %d", s.name, rec.Code)
			}
		}
		if got := e.signs(); got != s.signs {
			t.Errorf("%s: %d signatures so far, want %d", s.name, got, s.signs)
		}
	}
	rec := serve(t, e.r, "GET", sha1Good, nil)
	got, err := xocsp.ParseResponseForCert(rec.Body.Bytes(), g.leaf(serialGood), g.cert)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now(); !got.ThisUpdate.Equal(want) {
		t.Errorf("thisUpdate %v, want %v (re-signed now)", got.ThisUpdate, want)
	}
}

// TestInvalidate: the next response after Invalidate shows the new status.
func TestInvalidate(t *testing.T) {
	e := newEnv(t, nil)
	g := e.f.gen1
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		der := request(t, g.cert, h, nil, g.leaf(serialGood))
		if s := statusOf(t, e, serve(t, e.r, "GET", der, nil).Body.Bytes(), serialGood); s != xocsp.Good {
			t.Fatalf("status %d", s)
		}
	}
	e.source.set(e.gen1, serialGood, ocsp.Status{Status: ocsp.Revoked, RevokedAt: e.clock.Now(), Reason: 3})
	der := request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood))
	if s := statusOf(t, e, serve(t, e.r, "GET", der, nil).Body.Bytes(), serialGood); s != xocsp.Good {
		t.Fatalf("status %d before Invalidate, want the cached good", s)
	}
	e.r.Invalidate(new(big.Int).Set(serialGood))
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		der := request(t, g.cert, h, nil, g.leaf(serialGood))
		if s := statusOf(t, e, serve(t, e.r, "POST", der, nil).Body.Bytes(), serialGood); s != xocsp.Revoked {
			t.Errorf("%v: status %d after Invalidate, want revoked", h, s)
		}
	}
	// Serials the cache never holds are fine too.
	e.r.Invalidate(big.NewInt(0))
	e.r.Invalidate(big.NewInt(-5))
	e.r.Invalidate(nil)
}

// TestConcurrentMisses: concurrent requests for one uncached certificate
// make one signature.
func TestConcurrentMisses(t *testing.T) {
	e := newEnv(t, nil)
	gate := make(chan struct{})
	e.source.gate = gate
	der := request(t, e.f.gen1.cert, crypto.SHA256, nil, e.f.gen1.leaf(serialGood))
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if s := statusOf(t, e, serve(t, e.r, "GET", der, nil).Body.Bytes(), serialGood); s != xocsp.Good {
				t.Errorf("status %d", s)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	if n := e.signs(); n != 1 {
		t.Errorf("%d signatures for 50 concurrent requests, want 1", n)
	}
	if n := e.source.calls.Load(); n != 1 {
		t.Errorf("%d Source calls, want 1", n)
	}
}

// TestInvalidateWhileSigning: a response made from a status read before
// Invalidate is served to the requests waiting for it but not cached.
func TestInvalidateWhileSigning(t *testing.T) {
	e := newEnv(t, nil)
	gate := make(chan struct{})
	e.source.gate = gate
	der := request(t, e.f.gen1.cert, crypto.SHA1, nil, e.f.gen1.leaf(serialGood))
	done := make(chan int)
	go func() { done <- statusOf(t, e, serve(t, e.r, "GET", der, nil).Body.Bytes(), serialGood) }()
	for e.source.calls.Load() == 0 { // the Source has read "good"
		time.Sleep(time.Millisecond)
	}
	e.source.mu.Lock()
	e.source.gate = nil
	e.source.mu.Unlock()
	e.source.set(e.gen1, serialGood, ocsp.Status{Status: ocsp.Revoked, RevokedAt: e.clock.Now(), Reason: 1})
	e.r.Invalidate(serialGood)
	close(gate)
	if s := <-done; s != xocsp.Good {
		t.Fatalf("in-flight status %d, want the good it read", s)
	}
	if s := statusOf(t, e, serve(t, e.r, "GET", der, nil).Body.Bytes(), serialGood); s != xocsp.Revoked {
		t.Errorf("status %d after Invalidate, want revoked: the in-flight response was cached", s)
	}
}

// gather returns the value of a metric with the given label value ("" for
// none).
func gather(t testing.TB, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// TestCacheBoundedAndMetrics: the cache keeps at most CacheSize responses,
// evicting the ones not used since the hand's last pass.
func TestCacheBoundedAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(c *ocsp.Config) { c.CacheSize = 4; c.Metrics = reg })
	g := e.f.gen1
	base, err := ocsp.ParseRequest(request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood)))
	if err != nil {
		t.Fatal(err)
	}
	reqFor := func(sn int64) []byte {
		id := base.CertIDs[0]
		id.SerialNumber = big.NewInt(sn)
		der, err := (&ocsp.Request{CertIDs: []ocsp.CertID{id}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	for sn := int64(100); sn < 110; sn++ {
		e.source.set(e.gen1, big.NewInt(sn), ocsp.Status{Status: ocsp.Good})
	}
	for sn := int64(100); sn < 104; sn++ {
		serve(t, e.r, "GET", reqFor(sn), nil)
	}
	// 100 and 101 are used again; 104..109 must evict 102 and 103 first.
	serve(t, e.r, "GET", reqFor(100), nil)
	serve(t, e.r, "GET", reqFor(101), nil)
	if got := gather(t, reg, "shomei_ocsp_cache_entries", ""); got != 4 {
		t.Errorf("%v cached responses, want 4", got)
	}
	signs := e.signs()
	serve(t, e.r, "GET", reqFor(104), nil)
	serve(t, e.r, "GET", reqFor(105), nil)
	serve(t, e.r, "GET", reqFor(100), nil)
	serve(t, e.r, "GET", reqFor(101), nil)
	if got := e.signs() - signs; got != 2 {
		t.Errorf("%d signatures, want 2 (100 and 101 should have stayed)", got)
	}
	if got := gather(t, reg, "shomei_ocsp_cache_entries", ""); got != 4 {
		t.Errorf("%v cached responses, want 4", got)
	}
	for name, want := range map[string]float64{
		"shomei_ocsp_cache_hits_total":         4,
		"shomei_ocsp_cache_misses_total":       6,
		"shomei_ocsp_signing_duration_seconds": 6,
	} {
		if got := gather(t, reg, name, ""); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	serve(t, e.r, "POST", []byte("junk"), nil)
	serve(t, e.r, "POST", request(t, g.cert, crypto.SHA1, nil, g.leaf(serialUnknown)), nil)
	for label, want := range map[string]float64{"good": 10, "unknown": 1, "malformedRequest": 1} {
		if got := gather(t, reg, "shomei_ocsp_responses_total", label); got != want {
			t.Errorf("responses_total{status=%q} = %v, want %v", label, got, want)
		}
	}
	if got := gather(t, reg, "shomei_ocsp_responder_not_after_timestamp_seconds", ""); got != float64(g.responder.NotAfter.Unix()) {
		t.Errorf("responder notAfter gauge %v", got)
	}
}

func TestCacheDisabled(t *testing.T) {
	e := newEnv(t, func(c *ocsp.Config) { c.CacheSize = -1 })
	der := request(t, e.f.gen1.cert, crypto.SHA1, nil, e.f.gen1.leaf(serialGood))
	for range 3 {
		if rec := serve(t, e.r, "GET", der, nil); rec.Header().Get("ETag") == "" {
			t.Errorf("no ETag without the cache")
		}
	}
	if n := e.signs(); n != 3 {
		t.Errorf("%d signatures, want 3", n)
	}
}
