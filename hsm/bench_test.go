package hsm

import (
	"context"
	"crypto"
	"fmt"
	"testing"

	"github.com/shomei-pki/shomei/internal/testenv"
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
			testenv.Parallel(b, workers, func() error {
				_, err := s.Sign(nil, digest, crypto.SHA256)
				return err
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
		})
	}
}
