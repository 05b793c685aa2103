package testenv

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Parallel runs b.N calls of fn on workers goroutines, with the benchmark
// timer running only while they do, and fails the benchmark with the
// errors fn returned (a goroutine stops at its first).
func Parallel(b *testing.B, workers int, fn func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	b.ResetTimer()
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := fn(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
