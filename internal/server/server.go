package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// Options configure Run.
type Options struct {
	// GRPCListen is the gRPC address, e.g. 127.0.0.1:8443; empty for
	// none (an HTTP-only server, such as the OCSP replica's).
	GRPCListen string
	// HTTPListen is the HTTP address, e.g. 127.0.0.1:8080; empty for none.
	HTTPListen string
	// GRPCTLS, when set, secures the gRPC listener; nil means plaintext.
	GRPCTLS *tls.Config
	// Register adds the services to the gRPC server.
	Register func(*grpc.Server)
	// ServerOptions are extra gRPC server options (interceptors, …).
	ServerOptions []grpc.ServerOption
	// Health, if set, gets the gRPC health server and the registered
	// services once they are marked SERVING, to keep their status with
	// readiness (internal/health).
	Health func(hs *health.Server, services []string)
	// HTTP serves the HTTP listener.
	HTTP http.Handler
	// HTTPTLS, when set, secures the HTTP listener (relying parties that
	// identify by client certificate, R-R6); nil means plain HTTP.
	HTTPTLS *tls.Config
	// GRPCLimits and HTTPLimits bound each listener separately; zero
	// fields take their defaults, and the connection caps are lowered to
	// fit the process's file-descriptor limit (FitToFileLimit).
	GRPCLimits GRPCLimits
	HTTPLimits HTTPLimits
	// Metrics, if set, gets shomei_server_connections_refused_total and
	// shomei_server_connections_open, by listener ("grpc", "http"), and
	// the gRPC server's shomei_grpc_server_* (grpcmetrics.go).
	Metrics prometheus.Registerer
	// ShutdownTimeout bounds the graceful stop; 10 s when zero.
	ShutdownTimeout time.Duration
	// Ready, if set, is called with the bound addresses once both listen
	// (nil for a listener not served).
	Ready func(grpcAddr, httpAddr net.Addr)
	// LogAttrs are added to the "listening" log line.
	LogAttrs []any
	Log      *slog.Logger
}

// Run serves until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, o Options) error {
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.GRPCListen == "" && o.HTTPListen == "" {
		return errors.New("server: neither a gRPC nor an HTTP address to listen on")
	}
	if err := errors.Join(o.GRPCLimits.Validate("grpc limits"), o.HTTPLimits.Validate("http limits")); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	o.GRPCLimits.defaults()
	o.HTTPLimits.defaults()
	var gLimits *GRPCLimits
	var hLimits *HTTPLimits
	if o.GRPCListen != "" {
		gLimits = &o.GRPCLimits
	}
	if o.HTTPListen != "" {
		hLimits = &o.HTTPLimits
	}
	if limit, err := fileLimit(); err == nil && FitToFileLimit(limit, gLimits, hLimits) {
		o.Log.Warn("connection caps lowered to fit the file-descriptor limit (raise LimitNOFILE / ulimit -n to keep the configured ones)",
			"nofile", limit, "grpc_max_connections", o.GRPCLimits.MaxConnections, "http_max_connections", o.HTTPLimits.MaxConnections)
	}
	m, err := newMetrics(o.Metrics)
	if err != nil {
		return fmt.Errorf("server: metrics: %w", err)
	}

	var gl, hl net.Listener
	closeAll := func() {
		for _, l := range []net.Listener{gl, hl} {
			if l != nil {
				l.Close()
			}
		}
	}
	if o.GRPCListen != "" {
		l, err := net.Listen("tcp", o.GRPCListen)
		if err != nil {
			return fmt.Errorf("server: gRPC listen on %s: %w", o.GRPCListen, err)
		}
		gl = newLimitListener(l, o.GRPCLimits.MaxConnections, o.GRPCLimits.MaxConnectionsPerAddress, "grpc", m)
	}
	if o.HTTPListen != "" {
		l, err := net.Listen("tcp", o.HTTPListen)
		if err != nil {
			closeAll()
			return fmt.Errorf("server: HTTP listen on %s: %w", o.HTTPListen, err)
		}
		hl = newLimitListener(l, o.HTTPLimits.MaxConnections, o.HTTPLimits.MaxConnectionsPerAddress, "http", m)
		if o.HTTPTLS != nil {
			// The cap counts connections before their TLS handshake.
			hl = tls.NewListener(hl, o.HTTPTLS)
		}
	}

	errs := make(chan error, 2)
	var gs *grpc.Server
	var hs *health.Server
	var calls *callTracker
	if gl != nil {
		calls = &callTracker{}
		var gm *grpcprom.ServerMetrics
		if o.Metrics != nil {
			if gm, err = newGRPCMetrics(o.Metrics); err != nil {
				closeAll()
				return fmt.Errorf("server: gRPC metrics: %w", err)
			}
		}
		gs, hs = newGRPCServer(o, gm, calls)
		go func() { errs <- gs.Serve(gl) }()
	}
	var hsrv *http.Server
	if hl != nil {
		hsrv = newHTTPServer(o.HTTP, o.HTTPLimits)
		go func() {
			if err := hsrv.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
				errs <- err
				return
			}
			errs <- nil
		}()
	}
	var grpcAddr, httpAddr net.Addr
	attrs := []any{}
	if gl != nil {
		grpcAddr = gl.Addr()
		attrs = append(attrs, "grpc", grpcAddr.String())
	}
	if hl != nil {
		httpAddr = hl.Addr()
	}
	attrs = append(attrs, "http", fmt.Sprint(httpAddr))
	if gl != nil {
		attrs = append(attrs, "grpc_tls", o.GRPCTLS != nil, "grpc_max_connections", o.GRPCLimits.MaxConnections)
	}
	if hl != nil {
		attrs = append(attrs, "http_max_connections", o.HTTPLimits.MaxConnections)
	}
	o.Log.Info("listening", append(attrs, o.LogAttrs...)...)
	if o.Ready != nil {
		o.Ready(grpcAddr, httpAddr)
	}

	var runErr error
	select {
	case <-ctx.Done():
		o.Log.Info("shutting down: finishing requests in flight", "timeout", o.ShutdownTimeout)
	case runErr = <-errs:
		o.Log.Error("a listener failed; shutting down", "error", runErr)
	}
	stopped := make(chan struct{})
	if gs != nil {
		hs.Shutdown() // health checks now say NOT_SERVING
		go func() { gs.GracefulStop(); close(stopped) }()
		// Calls that do no work (no request yet; health watches,
		// reflection) are not waited for.
		go calls.cutIdle(stopped, func(n int64) {
			o.Log.Info("cancelling gRPC calls that do no work: no request sent, health watch or reflection", "calls", n, "waited", stalledGrace)
			gs.Stop()
		})
	} else {
		close(stopped)
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	if hsrv != nil {
		// HTTP requests in flight get StopGrace, not the whole timeout:
		// a slow caller must not hold the stop (HTTPLimits.StopGrace).
		hctx, hcancel := context.WithTimeout(sctx, o.HTTPLimits.StopGrace)
		if err := hsrv.Shutdown(hctx); err != nil {
			o.Log.Info("closing HTTP connections still busy after the stop grace", "stop_grace", o.HTTPLimits.StopGrace)
			hsrv.Close()
		}
		hcancel()
	}
	select {
	case <-stopped:
	case <-sctx.Done():
	}
	select {
	case <-stopped: // gs is nil when not serving gRPC
	default:
		o.Log.Warn("graceful stop timed out; closing remaining connections and cancelling the calls in flight")
		// Stop cancels the calls and waits for their handlers
		// (grpc.WaitForHandlers), which may still write the store; it
		// is given as long again.
		go gs.Stop()
		select {
		case <-stopped:
		case <-time.After(o.ShutdownTimeout):
			o.Log.Error("gRPC handlers still running after they were cancelled", "waited", o.ShutdownTimeout)
			return errors.Join(runErr, ErrHandlersRunning)
		}
	}
	return runErr
}

// ErrHandlersRunning: Run returned with gRPC handlers still running (they
// ignored their cancellation), which may yet write; a caller that seals
// what they write (the audit log) must not.
var ErrHandlersRunning = errors.New("server: gRPC handlers still running at the end of the stop")

// newGRPCServer makes the gRPC server with o's limits, the health service
// and reflection, and m's interceptors when m is set (initialised for
// every registered method, so each has its series from the start); calls
// counts its calls for the stop.
func newGRPCServer(o Options, m *grpcprom.ServerMetrics, calls *callTracker) (*grpc.Server, *health.Server) {
	sopts := append(GRPCServerOptions(o.GRPCLimits), grpc.StatsHandler(calls))
	if m != nil {
		sopts = append(sopts, grpcMetricsOptions(m)...)
	}
	// The caller's options come after, so that they may override.
	sopts = append(sopts, o.ServerOptions...)
	if o.GRPCTLS != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(o.GRPCTLS)))
	}
	gs := grpc.NewServer(sopts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	if o.Register != nil {
		o.Register(gs)
	}
	if m != nil {
		m.InitializeMetrics(gs)
	}
	var services []string
	for name := range gs.GetServiceInfo() {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
		services = append(services, name)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	if o.Health != nil {
		o.Health(hs, services)
	}
	return gs, hs
}

// GRPCServerOptions are the gRPC server options that enforce l (zero
// fields: their defaults), for Run and for tests that build a gRPC server
// of their own (ca/service's harness), so that they see the limits the
// binary has.
func GRPCServerOptions(l GRPCLimits) []grpc.ServerOption {
	l.defaults()
	return []grpc.ServerOption{
		// Stop waits for the handlers it cancels: Run returning means
		// no call still writes (shomei-ca seals its audit log then).
		grpc.WaitForHandlers(true),
		grpc.MaxRecvMsgSize(l.MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
		grpc.ConnectionTimeout(l.ConnectionTimeout),
		grpc.MaxHeaderListSize(16 << 10),
		// Fixed HTTP/2 receive windows (no BDP growth, which reaches
		// megabytes): a caller can have at most 64 KiB per call and
		// 1 MiB per connection in flight towards the CA. A message over
		// MaxRecvMsgSize is refused from its length prefix, and its
		// sender cannot push the rest faster than the CA discards it.
		grpc.InitialWindowSize(64 << 10),
		grpc.InitialConnWindowSize(1 << 20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: l.KeepaliveMinTime}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: l.MaxConnectionIdle,
			Time:              l.KeepaliveTime,
			Timeout:           l.KeepaliveTimeout,
		}),
	}
}

// newHTTPServer makes the HTTP server with l's timeouts.
func newHTTPServer(h http.Handler, l HTTPLimits) *http.Server {
	return &http.Server{
		Handler:           progressDeadlines(h, l),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}
