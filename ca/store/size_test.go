package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/ca/store/engine"
)

// TestSize: a new store has a size, and 2 MiB more data grows it by at
// least 1 MiB on either engine; shomei_store_size_bytes exports it.
func TestSize(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s, err := be.open(t, Options{})
		if err != nil {
			t.Fatal(err)
		}
		before, err := s.Size(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if before <= 0 {
			t.Fatalf("size of a new %s store = %d, want > 0", be.name, before)
		}
		if !be.live {
			s.Close()
		}
		// Incompressible values, so that PostgreSQL's TOAST cannot
		// shrink them, in a bucket that no open reads.
		be.raw(t, func(tx engine.Tx) error {
			b := tx.Bucket(bucketEvents)
			for i := range 256 {
				v := make([]byte, 8<<10)
				rand.Read(v)
				if err := b.Put(fmt.Appendf(nil, "size-test/%03d", i), v); err != nil {
					return err
				}
			}
			return nil
		})
		if !be.live {
			if s, err = be.open(t, Options{}); err != nil {
				t.Fatal(err)
			}
		}
		defer s.Close()
		after, err := s.Size(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if after-before < 1<<20 {
			t.Errorf("%s store: %d bytes before 2 MiB were written, %d after: want at least 1 MiB more", be.name, before, after)
		}
		reg := prometheus.NewPedanticRegistry()
		if err := s.RegisterSizeMetric(reg); err != nil {
			t.Fatal(err)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(mfs) != 1 || mfs[0].GetName() != "shomei_store_size_bytes" || len(mfs[0].Metric) != 1 {
			t.Fatalf("gathered %v, want shomei_store_size_bytes alone", mfs)
		}
		if got := mfs[0].Metric[0].GetGauge().GetValue(); got < float64(after) {
			t.Errorf("shomei_store_size_bytes = %v, want at least %d", got, after)
		}
	})
}
