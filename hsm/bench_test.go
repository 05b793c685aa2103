package hsm

import (
	"context"
	"crypto"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkSignRSA2048 measures RSA-2048 PKCS #1 v1.5 signatures per second
// through the session pool, with 1 and 2 concurrent workers (pool size =
// workers). Compare with `openssl speed rsa2048` on the same machine.
//
//	go test -run '^$' -bench SignRSA2048 ./hsm
func BenchmarkSignRSA2048(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			tok := openToken(b, labelBench, func(c *Config) { c.PoolSize = workers })
			ref := KeyRef{Label: fmt.Sprintf("bench-%d", workers), ID: randomID(b)}
			s, err := tok.GenerateKey(context.Background(), ref, RSA2048)
			if err != nil {
				b.Fatal(err)
			}
			digest := digestOf(crypto.SHA256, []byte("bench"))
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			b.ResetTimer()
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := s.Sign(nil, digest, crypto.SHA256); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
		})
	}
}
