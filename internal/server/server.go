package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// Options configure Run.
type Options struct {
	// GRPCListen is the gRPC address, e.g. 127.0.0.1:8443.
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
	// ShutdownTimeout bounds the graceful stop; 10 s when zero.
	ShutdownTimeout time.Duration
	// Ready, if set, is called with the bound addresses once both listen.
	Ready func(grpcAddr, httpAddr net.Addr)
	Log   *slog.Logger
}

// Run serves until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, o Options) error {
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	gl, err := net.Listen("tcp", o.GRPCListen)
	if err != nil {
		return fmt.Errorf("server: gRPC listen on %s: %w", o.GRPCListen, err)
	}
	var hl net.Listener
	if o.HTTPListen != "" {
		if hl, err = net.Listen("tcp", o.HTTPListen); err != nil {
			gl.Close()
			return fmt.Errorf("server: HTTP listen on %s: %w", o.HTTPListen, err)
		}
	}

	sopts := o.ServerOptions
	if o.GRPCTLS != nil {
		sopts = append(slices.Clone(sopts), grpc.Creds(credentials.NewTLS(o.GRPCTLS)))
	}
	gs := grpc.NewServer(sopts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	if o.Register != nil {
		o.Register(gs)
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

	errs := make(chan error, 2)
	go func() { errs <- gs.Serve(gl) }()
	var hsrv *http.Server
	if hl != nil {
		hsrv = &http.Server{Handler: o.HTTP, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := hsrv.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
				errs <- err
				return
			}
			errs <- nil
		}()
	}
	var httpAddr net.Addr
	if hl != nil {
		httpAddr = hl.Addr()
	}
	o.Log.Info("listening", "grpc", gl.Addr().String(), "http", fmt.Sprint(httpAddr), "grpc_tls", o.GRPCTLS != nil)
	if o.Ready != nil {
		o.Ready(gl.Addr(), httpAddr)
	}

	var runErr error
	select {
	case <-ctx.Done():
		o.Log.Info("shutting down: finishing requests in flight", "timeout", o.ShutdownTimeout)
	case runErr = <-errs:
		o.Log.Error("a listener failed; shutting down", "error", runErr)
	}
	hs.Shutdown() // health checks now say NOT_SERVING
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	if hsrv != nil {
		if err := hsrv.Shutdown(sctx); err != nil {
			hsrv.Close()
		}
	}
	select {
	case <-stopped:
	case <-sctx.Done():
		o.Log.Warn("graceful stop timed out; closing remaining connections")
		gs.Stop()
	}
	return runErr
}
