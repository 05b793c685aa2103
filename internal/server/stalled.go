package server

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/stats"
)

// stalledGrace is how long a stop lets gRPC calls that do no work go on
// before it cancels them: calls that have not sent their request message
// yet (gRPC reads a unary request before any interceptor, so not even
// the gate has seen them) and calls of the health service and of server
// reflection, which this package registers, which are public and change
// nothing, and whose streams (Health/Watch, ServerReflectionInfo) last as
// long as their caller likes. Waiting for such calls let anyone make every
// stop last the shutdown timeout (issue 13).
const stalledGrace = time.Second

// idleServices are the services whose calls a stop does not wait for.
var idleServices = []string{"/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"}

// callTracker is a stats.Handler counting the gRPC calls in flight and,
// among them, those that do no work: still waiting for their first
// request message, or of idleServices.
type callTracker struct {
	active, waiting, idle atomic.Int64
}

var _ stats.Handler = (*callTracker)(nil)

type callKey struct{}

// callState is one call's: whether it is of idleServices, and whether
// its first request message arrived (or it ended).
type callState struct {
	idle     bool
	received atomic.Bool
}

func (c *callTracker) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	st := &callState{idle: slices.ContainsFunc(idleServices, func(prefix string) bool {
		return strings.HasPrefix(info.FullMethodName, prefix)
	})}
	return context.WithValue(ctx, callKey{}, st)
}

func (c *callTracker) HandleRPC(ctx context.Context, s stats.RPCStats) {
	st, _ := ctx.Value(callKey{}).(*callState)
	if st == nil || s.IsClient() {
		return
	}
	switch s.(type) {
	case *stats.Begin:
		c.active.Add(1)
		if st.idle {
			c.idle.Add(1)
		} else {
			c.waiting.Add(1)
		}
	case *stats.InPayload:
		if !st.idle && st.received.CompareAndSwap(false, true) {
			c.waiting.Add(-1)
		}
	case *stats.End:
		if st.idle {
			c.idle.Add(-1)
		} else if st.received.CompareAndSwap(false, true) {
			c.waiting.Add(-1)
		}
		c.active.Add(-1)
	}
}

func (c *callTracker) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (c *callTracker) HandleConn(context.Context, stats.ConnStats) {}

// idleOnly reports how many calls are in flight when none of them does
// work (each waits for its request or is of idleServices); 0 otherwise.
// The idle counts are read before active, so that a call beginning or
// ending between the reads makes them differ (no) rather than agree
// wrongly.
func (c *callTracker) idleOnly() int64 {
	idle := c.waiting.Load() + c.idle.Load()
	if active := c.active.Load(); active > 0 && active == idle {
		return active
	}
	return 0
}

// cutIdle calls stop once, after stalledGrace, as soon as no gRPC call
// still in flight does work; it returns when stopped closes.
func (c *callTracker) cutIdle(stopped <-chan struct{}, stop func(n int64)) {
	grace := time.NewTimer(stalledGrace)
	defer grace.Stop()
	select {
	case <-stopped:
		return
	case <-grace.C:
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if n := c.idleOnly(); n > 0 {
			stop(n)
			return
		}
		select {
		case <-stopped:
			return
		case <-tick.C:
		}
	}
}
