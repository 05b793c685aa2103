package ocsp_test

import (
	"bytes"
	"crypto"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ocsp"
)

// discard is a ResponseWriter that keeps nothing, so a benchmark measures
// the responder rather than a recorder.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// manySerials sets n good serials from 0x10000 in the env's source and
// returns a GET request for each (gen1, SHA-1 CertIDs).
func manySerials(b *testing.B, e *env, n int) []*http.Request {
	base, err := ocsp.ParseRequest(request(b, e.f.gen1.cert, crypto.SHA1, nil, e.f.gen1.leaf(serialGood)))
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]*http.Request, n)
	for i := range reqs {
		sn := big.NewInt(0x10000 + int64(i))
		e.source.set(e.gen1, sn, ocsp.Status{Status: ocsp.Good})
		id := base.CertIDs[0]
		id.SerialNumber = sn
		der, err := (&ocsp.Request{CertIDs: []ocsp.CertID{id}}).Marshal()
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = httptest.NewRequest(http.MethodGet, getURL("", der), nil)
	}
	return reqs
}

// run serves b.N requests from conc goroutines and reports responses/s.
func run(b *testing.B, conc int, h http.Handler, next func(i int64) *http.Request) {
	var n atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range conc {
		wg.Go(func() {
			w := &discard{h: http.Header{}}
			for {
				i := n.Add(1)
				if i > int64(b.N) {
					return
				}
				clear(w.h)
				h.ServeHTTP(w, next(i))
				if w.code != http.StatusOK {
					b.Errorf("HTTP %d", w.code)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "responses/s")
}

// BenchmarkCached: cached responses through ServeHTTP (GET, no nonce), for
// one hot certificate and for 1000, at 1, 8 and 64 concurrent requests.
func BenchmarkCached(b *testing.B) {
	for _, keys := range []int{1, 1000} {
		for _, conc := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("certs=%d/conc=%d", keys, conc), func(b *testing.B) {
				e := newEnv(b, nil)
				reqs := manySerials(b, e, keys)
				for _, r := range reqs { // warm the cache
					e.r.ServeHTTP(&discard{h: http.Header{}}, r)
				}
				signs := e.signs()
				run(b, conc, e.r, func(i int64) *http.Request { return reqs[i%int64(len(reqs))] })
				if e.signs() != signs {
					b.Errorf("%d signatures while serving from the cache", e.signs()-signs)
				}
			})
		}
	}
}

// BenchmarkSigned: responses signed for every request (POST with a
// nonce), with the P-256 responder (gen1) and the RSA-2048 one (gen2).
func BenchmarkSigned(b *testing.B) {
	for _, resp := range []string{"P-256", "RSA-2048"} {
		for _, conc := range []int{1, 8} {
			b.Run(fmt.Sprintf("responder=%s/conc=%d", resp, conc), func(b *testing.B) {
				e := newEnv(b, nil)
				g := e.f.gen1
				sn := serialGood
				if resp == "RSA-2048" {
					g, sn = e.f.gen2, serialGen2Good
				}
				der := request(b, g.cert, crypto.SHA256, []byte("0123456789abcdef"), g.leaf(sn))
				run(b, conc, e.r, func(int64) *http.Request {
					return httptest.NewRequest(http.MethodPost, "/ocsp", bytes.NewReader(der))
				})
			})
		}
	}
}

// BenchmarkCacheMemory reports the heap a cached response takes.
func BenchmarkCacheMemory(b *testing.B) {
	const n = 20000
	for range b.N {
		e := newEnv(b, nil)
		reqs := manySerials(b, e, n)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, r := range reqs {
			e.r.ServeHTTP(&discard{h: http.Header{}}, r)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/entry")
		runtime.KeepAlive(reqs)
		runtime.KeepAlive(e)
	}
}

// BenchmarkPresigned: responses read from a pre-signed response store
// through ServeHTTP (GET, SHA-1, no nonce), for 20,000 certificates with a
// cache of 1024 (almost every request reads the store, as a request spread
// over millions of certificates does), next to BenchmarkCached.
func BenchmarkPresigned(b *testing.B) {
	const certs = 20_000
	for _, conc := range []int{1, 8} {
		b.Run(fmt.Sprintf("certs=%d/conc=%d", certs, conc), func(b *testing.B) {
			e := newPresignEnv(b, func(c *ocsp.Config) { c.CacheSize = 1024 }, func(p *ocsp.PresignConfig) { p.Budget = ocsp.MaxPresignBudget; p.Burst = ocsp.MaxPresignBudget })
			reqs := manySerials(b, e.env, certs)
			for i := range certs {
				e.store.issue(e.f.gen1.cert, big.NewInt(0x10000+int64(i)), e.clock.Now().Add(time.Hour))
			}
			for e.store.queued() > 0 {
				if res := step(b, e.p); res.Signed == 0 && res.Stored == 0 {
					break
				}
				if n, _, _ := e.store.PresignStats(e.clock.Now(), 1); n == 0 {
					break
				}
			}
			signs := e.signs()
			run(b, conc, e.r, func(i int64) *http.Request { return reqs[i%int64(len(reqs))] })
			if e.signs() != signs {
				b.Errorf("%d signatures while serving pre-signed responses", e.signs()-signs)
			}
		})
	}
}
