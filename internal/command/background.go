package command

import (
	"context"
	"sync"
	"time"
)

// Background is the work a server runs beside its listeners (CRL
// publishing, responder renewal, following the CA, …): it lives until
// Stop, or until the server's context ends, and Stop waits for it.
type Background struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewBackground makes a Background whose work ends with parent at the
// latest.
func NewBackground(parent context.Context) *Background {
	ctx, cancel := context.WithCancel(parent)
	return &Background{ctx: ctx, cancel: cancel}
}

// Go runs fn with the background context in a goroutine.
func (b *Background) Go(fn func(ctx context.Context)) {
	b.wg.Go(func() { fn(b.ctx) })
}

// Stop ends the background work and waits for it at most timeout; it
// reports whether all of it ended.
func (b *Background) Stop(timeout time.Duration) bool {
	b.cancel()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}
