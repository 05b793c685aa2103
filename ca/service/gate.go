package service

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shomei-pki/shomei/ca/caller"
	"github.com/shomei-pki/shomei/internal/ratelimit"
)

// Default limits of a Gate.
var (
	// DefaultClientLimit is each client's request rate unless configured.
	DefaultClientLimit = ratelimit.Limit{Rate: 200, Burst: 400}
	// DefaultFailureLimit bounds failed authentications per peer address:
	// a token-guessing flood gets a guess a second.
	DefaultFailureLimit = ratelimit.Limit{Rate: 1, Burst: 20}
)

// GateConfig configures a Gate.
type GateConfig struct {
	// Clients authenticates callers. Nil means development mode: every
	// caller is a local one, with no credentials and no limits (the CA
	// allows that on a loopback address only).
	Clients *TokenAuthorizer
	// ClientLimit is the request rate of a client that has none of its
	// own (Client.Limit.Rate 0); Rate 0: DefaultClientLimit; a negative
	// Rate: none.
	ClientLimit ratelimit.Limit
	// FailureLimit bounds failed authentications per peer address (IP,
	// or IPv6 /64); Rate 0: DefaultFailureLimit; a negative Rate: none.
	FailureLimit ratelimit.Limit
	// Now is the clock of the token buckets; nil: time.Now.
	Now func() time.Time
}

// Gate authenticates every gRPC call before the server reads a byte of
// its body (issue 9 item 5): in grpc-go a request message is unmarshalled
// before unary interceptors run, so the bearer token and the client
// certificate are checked in the transport's tap handle, on the request
// headers alone. Refused there are: a missing or unknown token, a token
// and client certificate naming different clients (Unauthenticated), a
// client over its request rate, and any call from an address that failed
// authentication too often, unless it comes from a client that had
// authenticated from that address before (ResourceExhausted, with a
// RetryInfo delay).
// The authenticated client is put into the call's context (caller.With)
// for the handlers and the audit log (R-K3); interceptors refuse a call
// without one, so a server built without the tap handle fails closed.
//
// Public, without credentials: the gRPC health service and server
// reflection (the API's schema is public; grpcurl needs it). Everything
// else, CheckCharacters included, needs a client when clients are
// configured.
type Gate struct {
	clients  *TokenAuthorizer
	client   ratelimit.Limit
	failure  ratelimit.Limit
	now      func() time.Time
	perName  map[string]*ratelimit.Bucket // nil bucket: unlimited
	perAddr  *ratelimit.Table             // nil: failures unlimited
	known    *seenPairs
	refusals *prometheus.CounterVec
	audit    atomic.Pointer[RefusalRecorder] // set once by AuditRefusals
}

// NewGate makes a Gate.
func NewGate(cfg GateConfig) (*Gate, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Gate{clients: cfg.Clients, client: cfg.ClientLimit, failure: cfg.FailureLimit, now: cfg.Now,
		perName: map[string]*ratelimit.Bucket{}, known: &seenPairs{m: map[seenPair]struct{}{}}}
	// A zero rate takes the default, whatever the burst says.
	if g.client.Rate == 0 {
		g.client = DefaultClientLimit
	}
	if g.failure.Rate == 0 {
		g.failure = DefaultFailureLimit
	}
	now := cfg.Now()
	if cfg.Clients != nil {
		// The clients are fixed by the configuration: one bucket each.
		for _, c := range cfg.Clients.clients {
			limit := c.limit
			if limit.Rate == 0 {
				limit = g.client
			}
			g.perName[c.name] = limit.Bucket(now)
		}
	}
	if !g.failure.Unlimited() {
		t, err := ratelimit.NewTable(ratelimit.Config{Rate: g.failure.Rate, Burst: g.failure.BurstOrDefault(), Size: maxFailureAddresses})
		if err != nil {
			return nil, err
		}
		g.perAddr = t
	}
	g.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shomei_grpc_refused_total",
		Help: "gRPC calls refused before any work, by reason (unauthenticated, role, client_rate, address_rate).",
	}, []string{"reason"})
	return g, nil
}

var _ prometheus.Collector = (*Gate)(nil)

// Describe implements prometheus.Collector: shomei_grpc_refused_total.
func (g *Gate) Describe(ch chan<- *prometheus.Desc) { g.refusals.Describe(ch) }

// Collect implements prometheus.Collector.
func (g *Gate) Collect(ch chan<- prometheus.Metric) { g.refusals.Collect(ch) }

// ServerOptions install the Gate on a gRPC server.
func (g *Gate) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InTapHandle(g.tap),
		grpc.ChainUnaryInterceptor(g.unary),
		grpc.ChainStreamInterceptor(g.stream),
	}
}

// public reports whether a method needs no credentials.
func public(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.v1.ServerReflection/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.v1alpha.ServerReflection/")
}

// OperationsPrefix starts the full method names of the operator's API
// (shomei.ops.v1.Operations).
const OperationsPrefix = "/shomei.ops.v1.Operations/"

// operations reports whether a method is the operator's.
func operations(fullMethod string) bool { return strings.HasPrefix(fullMethod, OperationsPrefix) }

// tap runs on the connection's reader goroutine, on the headers of a new
// call, before the call exists: it must stay cheap (a hash and a few map
// look-ups).
func (g *Gate) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if public(info.FullMethodName) {
		return ctx, nil
	}
	if g.clients == nil {
		return withStall(caller.With(ctx, caller.Caller{Kind: caller.Local, Via: "none"}), info.FullMethodName), nil
	}
	p, _ := peer.FromContext(ctx)
	addr := "unknown"
	if p != nil && p.Addr != nil {
		addr = ratelimit.AddressKey(p.Addr.String())
	}
	now := g.now()
	c, via, err := g.clients.authenticate(info.Header, p)
	if ok, wait := g.failuresReady(addr, now); !ok && (err != nil || !g.known.has(addr, c.name)) {
		// Over its budget of failures, an address gets this answer
		// whatever it sends, so a right guess looks like a wrong one;
		// only a client that had authenticated from the address before
		// goes on, so that a flood from a shared address (a NAT, the
		// loopback in a test) does not lock out the client behind it.
		g.refusals.WithLabelValues("address_rate").Inc()
		return ctx, g.refused(ctx, info.FullMethodName, exhausted("too many failed authentications from this address", wait))
	}
	if err != nil {
		if g.perAddr != nil {
			g.perAddr.Allow(addr, now)
		}
		g.refusals.WithLabelValues("unauthenticated").Inc()
		return ctx, g.refused(ctx, info.FullMethodName, err)
	}
	g.known.add(addr, c.name)
	ctx = caller.With(ctx, c.caller(via))
	// Roles, before the body is read: the Operations service is for
	// operators only, and operators may call nothing else.
	if operations(info.FullMethodName) != c.operator {
		g.refusals.WithLabelValues("role").Inc()
		what := "an operator"
		if c.operator {
			what = "a municipal system or a replica"
		}
		return ctx, g.refused(ctx, info.FullMethodName,
			status.Errorf(codes.PermissionDenied, "client %s may not call %s: it is for %s", c.name, info.FullMethodName, what))
	}
	if b := g.perName[c.name]; b != nil {
		if ok, wait := b.Allow(now); !ok {
			g.refusals.WithLabelValues("client_rate").Inc()
			return ctx, g.refused(ctx, info.FullMethodName,
				exhausted(fmt.Sprintf("client %s is over its request rate", c.name), wait))
		}
	}
	return withStall(ctx, info.FullMethodName), nil
}

// stallKey carries the cancel of an operator call's context (withStall).
type stallKey struct{}

// withStall gives an Operations call a context its handler can end
// (SendWithin). The tap's context is the one the transport's flow control
// waits on, so ending it unblocks a Send to a client that stopped reading;
// a handler's own context cannot do that.
func withStall(ctx context.Context, fullMethod string) context.Context {
	if !operations(fullMethod) {
		return ctx
	}
	ctx, cancel := context.WithCancel(ctx)
	return context.WithValue(ctx, stallKey{}, cancel)
}

// endStall releases what withStall made, when the call ends.
func endStall(ctx context.Context) {
	if cancel, ok := ctx.Value(stallKey{}).(context.CancelFunc); ok {
		cancel()
	}
}

// SendWithin runs send, a Send on the server stream of an Operations call
// that came through the gate, and ends the call if send has not returned
// within d (a client that does not read holds a Send forever: keepalive
// pings are answered by its transport). The Send then fails with
// Canceled. Elsewhere, or with d <= 0, it just runs send.
func SendWithin(ctx context.Context, d time.Duration, send func() error) error {
	cancel, ok := ctx.Value(stallKey{}).(context.CancelFunc)
	if !ok || d <= 0 {
		return send()
	}
	t := time.AfterFunc(d, cancel)
	defer t.Stop()
	return send()
}

// AuditRefusals makes the gate audit the calls it refuses (R-K3), as the
// refusal interceptors audit those refused later; rec rate-limits the
// records itself. Call it before serving.
func (g *Gate) AuditRefusals(rec RefusalRecorder) { g.audit.Store(&rec) }

// refused audits err as a refusal of method, when AuditRefusals was
// called, and returns it.
func (g *Gate) refused(ctx context.Context, method string, err error) error {
	if rec := g.audit.Load(); rec != nil {
		Refused(ctx, *rec, method, err)
	}
	return err
}

// maxFailureAddresses bounds the addresses whose failed authentications
// are counted (ratelimit.Table evicts the least recently used).
const maxFailureAddresses = 65536

// failuresReady reports whether addr still has failed authentications to
// spend, and if not, how long until it has.
func (g *Gate) failuresReady(addr string, now time.Time) (bool, time.Duration) {
	if g.perAddr == nil {
		return true, 0
	}
	return g.perAddr.Ready(addr, now)
}

// seenPairs remembers which clients authenticated from which addresses,
// up to maxSeenPairs pairs (then it starts again: memory stays bounded).
type seenPairs struct {
	mu sync.Mutex
	m  map[seenPair]struct{}
}

// seenPair is a seenPairs key: a struct, so that remembering the pair on
// every authenticated call allocates no concatenated string.
type seenPair struct{ addr, client string }

const maxSeenPairs = 16384

func (s *seenPairs) add(addr, client string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSeenPairs {
		clear(s.m)
	}
	s.m[seenPair{addr, client}] = struct{}{}
}

func (s *seenPairs) has(addr, client string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[seenPair{addr, client}]
	return ok
}

// exhausted is ResourceExhausted with the delay after which a retry may
// succeed, as a google.rpc.RetryInfo detail and in the message.
func exhausted(msg string, wait time.Duration) error {
	wait = wait.Round(time.Millisecond)
	st := status.New(codes.ResourceExhausted, fmt.Sprintf("%s; retry after %s", msg, wait))
	if withDelay, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)}); err == nil {
		st = withDelay
	}
	return st.Err()
}

var errNoCaller = status.Error(codes.Unauthenticated, "the call was not authenticated")

// admitted: the tap handle authenticated the call, or it needs nothing.
func admitted(ctx context.Context, fullMethod string) error {
	if public(fullMethod) {
		return nil
	}
	if _, ok := caller.From(ctx); !ok {
		return errNoCaller
	}
	return nil
}

func (g *Gate) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := admitted(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	defer endStall(ctx)
	return handler(ctx, req)
}

func (g *Gate) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := admitted(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	defer endStall(ss.Context())
	return handler(srv, ss)
}
