package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// workload is what a cell of the benchmark sends, and how to check what
// comes back.
type workload struct {
	URL string
	// Requests are DER requests, picked at random; Entries[i] is what
	// Requests[i] asks about.
	Requests [][]byte
	Entries  []*entry
	// Nonce: each request gets a fresh nonce (buildRequest withNonce).
	Nonce bool
	// Fixed, when set, is what every response is about, whatever was
	// asked (the ceiling).
	Fixed *entry
	// Issuer verifies the sampled responses.
	Issuer *x509.Certificate
	// Sample: every Sample-th response of a worker (and its first) is
	// verified in full; the others are checked structurally.
	Sample int
}

// cell is one measurement: a workload at a concurrency.
type cell struct {
	Concurrency int
	Warmup      time.Duration // responses in it are not counted
	Duration    time.Duration // requests are sent until its end
}

// result is what a cell measured.
type result struct {
	Concurrency int
	OK, Failed  int
	// Elapsed is from the end of warm-up to the last response counted;
	// the responses to requests sent before Duration ended are counted.
	Elapsed time.Duration
	// Latencies of the successful responses, sorted.
	Latencies []time.Duration
	// Conns is how many TCP connections were opened after warm-up.
	Conns      int64
	FirstError string
}

// Rate is successful responses per second.
func (r result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Percentile is the p-quantile (0 < p ≤ 1) of the latencies: the smallest
// latency with at least a fraction p of them at or below it.
func (r result) Percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	i := int(float64(n)*p+0.999999999) - 1
	return r.Latencies[min(max(i, 0), n-1)]
}

// run sends w's requests from c.Concurrency workers, each waiting for a
// response before sending the next, for c.Warmup then c.Duration.
func (w *workload) run(ctx context.Context, c cell) result {
	var dials atomic.Int64
	start := time.Now()
	measure := start.Add(c.Warmup)
	end := measure.Add(c.Duration)
	var dialsAtMeasure atomic.Int64
	dialsAtMeasure.Store(-1)
	snapshot := time.AfterFunc(c.Warmup, func() { dialsAtMeasure.Store(dials.Load()) })
	defer snapshot.Stop()
	type workerResult struct {
		lat        []time.Duration
		failed     int
		firstError string
		last       time.Time
	}
	results := make([]workerResult, c.Concurrency)
	var wg sync.WaitGroup
	for i := range c.Concurrency {
		wg.Go(func() {
			out := &results[i]
			out.lat = make([]time.Duration, 0, 1<<14)
			client, err := newConn(w.URL, &dials)
			if err != nil {
				out.failed, out.firstError = 1, err.Error()
				return
			}
			defer client.close()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			var body bytes.Buffer
			var nonce []byte
			recorded := 0 // responses counted
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				k := rng.IntN(len(w.Requests))
				req := w.Requests[k]
				if w.Nonce {
					req = slices.Clone(req)
					nonce = make([]byte, nonceLen)
					for j := range nonce {
						nonce[j] = byte(rng.Uint32())
					}
					setNonce(req, nonce)
				}
				err := client.post(ctx, req, &body)
				done := time.Now()
				d := done.Sub(t0)
				// Responses that arrive after warm-up are counted.
				record := !done.Before(measure)
				if err == nil {
					err = checkResponse(body.Bytes())
				}
				if err == nil && record && recorded%w.Sample == 0 {
					want := w.Entries[k]
					if w.Fixed != nil {
						want = w.Fixed
					}
					err = verifyResponse(body.Bytes(), w.Issuer, want, nonce, time.Now())
				}
				if !record {
					continue
				}
				recorded++
				out.last = done
				if err != nil {
					out.failed++
					if out.firstError == "" {
						out.firstError = err.Error()
					}
					continue
				}
				out.lat = append(out.lat, d)
			}
		})
	}
	wg.Wait()
	r := result{Concurrency: c.Concurrency}
	last := measure
	for _, wr := range results {
		r.Latencies = append(r.Latencies, wr.lat...)
		r.Failed += wr.failed
		if r.FirstError == "" {
			r.FirstError = wr.firstError
		}
		if wr.last.After(last) {
			last = wr.last
		}
	}
	r.OK = len(r.Latencies)
	r.Elapsed = last.Sub(measure)
	slices.Sort(r.Latencies)
	if at := dialsAtMeasure.Load(); at >= 0 {
		r.Conns = dials.Load() - at
	}
	return r
}

// signRate measures how many signatures sign makes per second from
// workers goroutines in d.
func signRate(ctx context.Context, workers int, d time.Duration, sign func(context.Context) error) (result, error) {
	start := time.Now()
	end := start.Add(d)
	var n atomic.Int64
	errs := make(chan error, workers)
	lats := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				t0 := time.Now()
				if err := sign(ctx); err != nil {
					errs <- err
					return
				}
				lats[i] = append(lats[i], time.Since(t0))
				n.Add(1)
			}
		})
	}
	wg.Wait()
	r := result{Concurrency: workers, OK: int(n.Load()), Elapsed: time.Since(start)}
	for _, l := range lats {
		r.Latencies = append(r.Latencies, l...)
	}
	slices.Sort(r.Latencies)
	select {
	case err := <-errs:
		return r, err
	default:
		return r, nil
	}
}

// fill sends each of w's requests once, from conc workers, and measures
// the rate: with an empty cache, every response is signed as it is
// cached. Every response is checked structurally, every Sample-th verified.
func (w *workload) fill(ctx context.Context, conc int) result {
	var dials atomic.Int64
	var next atomic.Int64
	var mu sync.Mutex
	r := result{Concurrency: conc}
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			var body bytes.Buffer
			var lat []time.Duration
			failed, firstError := 0, ""
			client, cerr := newConn(w.URL, &dials)
			if cerr != nil {
				failed, firstError = 1, cerr.Error()
			}
			for client != nil && ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= len(w.Requests) {
					break
				}
				t0 := time.Now()
				err := client.post(ctx, w.Requests[k], &body)
				d := time.Since(t0)
				if err == nil {
					err = checkResponse(body.Bytes())
				}
				if err == nil && w.Sample > 0 && k%w.Sample == 0 {
					err = verifyResponse(body.Bytes(), w.Issuer, w.Entries[k], nil, time.Now())
				}
				if err != nil {
					failed++
					if firstError == "" {
						firstError = err.Error()
					}
					continue
				}
				lat = append(lat, d)
			}
			if client != nil {
				client.close()
			}
			mu.Lock()
			defer mu.Unlock()
			r.Latencies = append(r.Latencies, lat...)
			r.Failed += failed
			if r.FirstError == "" {
				r.FirstError = firstError
			}
		})
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	r.OK = len(r.Latencies)
	r.Conns = dials.Load()
	slices.Sort(r.Latencies)
	return r
}
