package crl_test

import (
	"bufio"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/crl"
)

// benchSizes are the partition sizes of the issue: 1,000 to 1,000,000
// entries.
var benchSizes = []int{1_000, 100_000, 1_000_000}

// benchEntries are n entries with R-P1-like 127-bit serials and a mix of
// reasons: 60 % affiliationChanged, 20 % superseded, 10 %
// cessationOfOperation, 5 % keyCompromise, all with an invalidityDate,
// and 5 % unspecified without one. Deterministic, so runs compare.
func benchEntries(n int) []crl.Entry { return seededEntries(n, 0) }

// seededEntries are benchEntries from another seed: other serials.
func seededEntries(n int, seed byte) []crl.Entry {
	rng := rand.New(rand.NewChaCha8([32]byte{'c', 'r', 'l', seed}))
	base := thisUpdate.Add(-400 * 24 * time.Hour)
	entries := make([]crl.Entry, n)
	var buf [16]byte
	for i := range entries {
		for k := range buf {
			buf[k] = byte(rng.Uint32())
		}
		sn := new(big.Int).SetBytes(buf[:])
		sn.SetBit(sn, 127, 0).SetBit(sn, 126, 1)
		revoked := base.Add(time.Duration(rng.Int64N(int64(399 * 24 * time.Hour))))
		e := crl.Entry{Serial: sn, RevokedAt: revoked, InvalidityDate: revoked.Add(-time.Duration(rng.Int64N(int64(72 * time.Hour))))}
		switch k := i % 20; {
		case k < 12:
			e.Reason = affiliationChanged
		case k < 16:
			e.Reason = superseded
		case k < 18:
			e.Reason = cessationOfOperation
		case k < 19:
			e.Reason = keyCompromise
		default:
			e.InvalidityDate = time.Time{}
		}
		entries[i] = e
	}
	return entries
}

// peakSampler samples the heap (live and not yet swept objects) every
// millisecond until stopped: runtime.MemStats only has the current heap,
// not its peak, and reading runtime/metrics does not stop the world.
type peakSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startPeakSampler() *peakSampler {
	p := &peakSampler{stop: make(chan struct{})}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if h := heapNow(); h > p.peak {
				p.peak = h
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *peakSampler) Stop() uint64 {
	close(p.stop)
	p.done.Wait()
	if h := heapNow(); h > p.peak {
		p.peak = h
	}
	return p.peak
}

// resetPeakRSS resets the kernel's peak resident set size of the process
// (Linux: writing 5 to /proc/self/clear_refs); false where it cannot.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS is VmHWM, the peak resident set size since the last reset, in
// bytes; 0 where unknown.
func peakRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// measure runs loop and reports the heap's peak above what was live
// before (the request's entries), the process's peak RSS, and the CRL's
// size.
func measure(b *testing.B, loop func() int) {
	debug.FreeOSMemory() // a GC, and the freed heap back to the OS so that RSS starts from the live set
	base := heapNow()
	rssOK := resetPeakRSS()
	sampler := startPeakSampler()
	size := loop()
	peak := sampler.Stop()
	b.ReportMetric(float64(peak-min(base, peak))/1e6, "peak-heap-MB")
	if rss := peakRSS(); rssOK && rss > 0 {
		b.ReportMetric(float64(rss)/1e6, "peak-RSS-MB")
	}
	b.ReportMetric(float64(size)/1e6, "CRL-MB")
}

// BenchmarkBuild builds partitions of 1,000 to 1,000,000 entries signed by
// a software RSA-2048 key: the issue's "generation of a 1,000,000-entry
// CRL partition: seconds and peak memory". ns/op is the time of one CRL,
// B/op and allocs/op what it allocates in all, peak-heap-MB the most heap
// it held at once beyond its input, peak-RSS-MB the process's peak
// (input included).
func BenchmarkBuild(b *testing.B) {
	f := fixtures()[0]
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			req := request(f, benchEntries(n))
			b.ReportAllocs()
			measure(b, func() int {
				var der []byte
				for b.Loop() {
					var err error
					if der, err = crl.Build(req); err != nil {
						b.Fatal(err)
					}
				}
				return len(der)
			})
		})
	}
}

// BenchmarkCheck checks the same CRLs, as the post-sign check does.
func BenchmarkCheck(b *testing.B) {
	f := fixtures()[0]
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			req := request(f, benchEntries(n))
			der, err := crl.Build(req)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			measure(b, func() int {
				for b.Loop() {
					if err := crl.Check(der, req); err != nil {
						b.Fatal(err)
					}
				}
				return len(der)
			})
		})
	}
}

// BenchmarkPartitionSet generates a 1,000,000-entry partition set, the
// issue's "generation of a 1,000,000-entry CRL partition set: seconds and
// peak memory", signed by an RSA-2048 key in SoftHSM2: ten partitions of
// 100,000 entries, and one partition of 1,000,000. One op is the whole set,
// each CRL built and then checked, as the publisher does before
// publishing. ns/op is the set's time, build-s and check-s its two parts,
// CRL-MB the set's CRLs, peak-heap-MB the most heap (runtime/metrics
// /memory/classes/heap/objects:bytes, sampled every millisecond) held at
// once beyond the requests' entries, and peak-RSS-MB the process's VmHWM
// (entries included).
//
//	go test -run '^$' -bench PartitionSet -benchtime 2x ./crl
func BenchmarkPartitionSet(b *testing.B) {
	f := hsmIssuer(b)
	for _, set := range []struct{ partitions, entries int }{{10, 100_000}, {1, 1_000_000}} {
		b.Run(fmt.Sprintf("partitions=%dx%d", set.partitions, set.entries), func(b *testing.B) {
			reqs := make([]crl.Request, set.partitions)
			for i := range reqs {
				reqs[i] = request(f, seededEntries(set.entries, byte(i)))
				reqs[i].Partition = partition(sign, "sign", fmt.Sprintf("%05d", 13201+i), fmt.Sprintf("市%02d", i))
			}
			var build, check time.Duration
			measure(b, func() int {
				size := 0
				for b.Loop() {
					size = 0
					for _, req := range reqs {
						start := time.Now()
						der, err := crl.Build(req)
						if err != nil {
							b.Fatal(err)
						}
						mid := time.Now()
						if err := crl.Check(der, req); err != nil {
							b.Fatal(err)
						}
						build, check = build+mid.Sub(start), check+time.Since(mid)
						size += len(der)
					}
				}
				return size
			})
			b.ReportMetric(build.Seconds()/float64(b.N), "build-s/op")
			b.ReportMetric(check.Seconds()/float64(b.N), "check-s/op")
		})
	}
}
