package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/shomei-pki/shomei/internal/gctuning"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/ocsp"
	"github.com/shomei-pki/shomei/ocsp/replica"
	"github.com/shomei-pki/shomei/ocsp/responders"
)

func run(ctx context.Context, configPath string, log *slog.Logger) error {
	if percent, fromEnv := gctuning.Apply(); fromEnv {
		log.Info("garbage collector target from GOGC", "percent", percent)
	}
	cfg, err := config.LoadReplica(configPath)
	if err != nil {
		return err
	}
	st, err := replica.Open(cfg.Store.Path)
	if err != nil {
		return err
	}
	defer st.Close()
	tok, err := cfg.HSM.Open()
	if err != nil {
		return err
	}
	defer tok.Close()

	opts, err := clienttoken.DialOptions(cfg.CA.TokenFile, cfg.CA.TLSCAFile)
	if err != nil {
		return fmt.Errorf("ca.token_file / ca.tls_ca_file: %w", err)
	}
	conn, err := grpc.NewClient(cfg.CA.Address, opts...)
	if err != nil {
		return fmt.Errorf("ca.address: %w", err)
	}
	defer conn.Close()
	client := cav1.NewReplicationClient(conn)

	list, err := replica.Issuers(ctx, client, st, log)
	if err != nil {
		return err
	}
	var targets []responders.Target
	byName := map[string]*x509.Certificate{}
	for _, is := range list.Issuers {
		cert, err := x509.ParseCertificate(is.CertificateDer)
		if err != nil {
			return fmt.Errorf("issuer %s: %w", is.Name, err)
		}
		targets = append(targets, responders.Target{Name: is.Name, Certificate: cert})
		byName[is.Name] = cert
	}
	if len(targets) == 0 {
		return errors.New("the CA has no issuers")
	}
	keeper, err := responders.New(responders.Config{
		Token: tok, Targets: targets, KeyPrefix: "shomei-ocsp-" + cfg.Name,
		Certifier: replica.RemoteCertifier{Client: client}, Store: st,
		Validity: cfg.OCSP.ResponderValidity, RenewBefore: cfg.OCSP.RenewBefore, Log: log,
	})
	if err != nil {
		return err
	}
	issuers, next, err := keeper.Current(ctx)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	responder, err := ocsp.New(ocsp.Config{
		Issuers: issuers, Source: replica.NewSource(st, byName),
		Validity: cfg.OCSP.ResponseValidity, MaxAge: cfg.OCSP.MaxAge, CacheSize: cfg.OCSP.CacheSize,
		Log: log, Metrics: reg,
	})
	if err != nil {
		return err
	}
	follower, err := replica.NewFollower(replica.FollowerConfig{Store: st, Client: client, Invalidate: responder.Invalidate, Metrics: reg, Log: log})
	if err != nil {
		return err
	}
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	go keeper.Maintain(bg, responder, next)
	go follower.Run(bg)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if st.SyncedAt().IsZero() {
			http.Error(w, "not yet synced with the CA", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ok, in sync with the CA as of %s\n", st.SyncedAt().UTC().Format(time.RFC3339))
	})
	// /healthz: started (synced once); /readyz: in sync now.
	readiness, err := newReadiness(st, log)
	if err != nil {
		return err
	}
	mux.Handle("GET /readyz", readiness)
	ln, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("http_listen %s: %w", cfg.HTTPListen, err)
	}
	srv := &http.Server{Handler: responder.InFront(mux), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("listening", "http", ln.Addr().String(), "ca", cfg.CA.Address, "replica", cfg.Name)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	log.Info("stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
