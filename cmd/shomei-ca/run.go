package main

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/shomei-pki/shomei/internal/gctuning"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/dn"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/ca/service"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/internal/health"
	"github.com/shomei-pki/shomei/internal/server"
	"github.com/shomei-pki/shomei/ocsp"
)

// run starts the CA and serves until ctx ends. ready, if set, gets the bound
// addresses (tests use it).
func run(ctx context.Context, configPath string, log *slog.Logger, ready func(grpcAddr, httpAddr net.Addr)) error {
	if percent, fromEnv := gctuning.Apply(); fromEnv {
		log.Info("garbage collector target from GOGC", "percent", percent)
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	// The clients' tokens and the TLS files are read before anything else,
	// so that a mistake in them stops the CA before a key ceremony.
	auth, err := authorizer(cfg, log)
	if err != nil {
		return err
	}
	grpcTLS, err := cfg.GRPCTLS()
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.Store.Path, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	tok, err := cfg.OpenHSM()
	if err != nil {
		return err
	}
	defer tok.Close()

	if done, err := st.Initialized(); err != nil {
		return err
	} else if !done {
		log.Info("empty store: running the key ceremony", "store", cfg.Store.Path, "token", tok.Label())
		ic, err := cfg.IssuerConfig()
		if err != nil {
			return err
		}
		cer := issuer.Ceremony{Token: tok, Store: st, Config: ic, Operator: "shomei-ca first start", Log: log}
		if _, err := cer.Run(ctx); err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := ca.NewMetrics(reg)
	if err != nil {
		return err
	}
	pcfg := profile.Config{CPSURL: cfg.Certificates.CPSURL}
	if cfg.OCSPEnabled() {
		pcfg.OCSPURL = cfg.Server.PublicURL + "/ocsp"
	}
	if len(cfg.Certificates.IssuerAltName) > 0 {
		if pcfg.IssuerAltName, err = dn.Parse(cfg.Certificates.IssuerAltName); err != nil {
			return err
		}
	}
	// Revocations wake the CRL publisher and the OCSP follower at once;
	// both also poll the store's status-change log (R-R4).
	var (
		publisher   *crl.Publisher
		responder   *ocsp.Responder
		follow      *follower
		replication *service.Replication
	)
	authority, err := ca.New(ctx, ca.Config{
		Store: st, Token: tok, Profile: pcfg, CRLBaseURL: cfg.Server.PublicURL + "/crl",
		AllowECDSAP256: cfg.Certificates.AllowECDSAP256, Log: log, Metrics: metrics,
		OnStatusChange: func() { follow.Notify(); publisher.Notify(); replication.Notify() },
	})
	if err != nil {
		return err
	}
	bgCtx, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	if responder, err = startOCSP(bgCtx, cfg, st, tok, authority, reg, log); err != nil {
		return fmt.Errorf("OCSP responder: %w", err)
	}
	if follow, err = newFollower(st, responder.Invalidate, reg, log); err != nil {
		return err
	}
	publisher, err = crl.NewPublisher(crl.PublisherConfig{Source: st, Issuers: authority.IssuerSigner, Log: log, Published: follow.published, Metrics: reg})
	if err != nil {
		return err
	}
	go follow.run(bgCtx)
	go publisher.Run(bgCtx)
	svc, err := service.New(authority, auth, log)
	if err != nil {
		return err
	}
	replication, err = service.NewReplication(service.ReplicationConfig{
		CA: authority, Store: st, Auth: auth, Log: log,
		MaxResponderValidity: cfg.OCSP.ResponderValidity,
	})
	if err != nil {
		return err
	}

	issuers, err := issuer.Load(st)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	// Issuer certificates for relying parties: /issuers/shomei-sign-g1.pem, …
	for _, is := range issuers {
		body := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.CertificateDer})
		mux.HandleFunc("GET /issuers/"+is.KeyLabel+".pem", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/x-pem-file")
			w.Write(body)
		})
		der := is.CertificateDer
		mux.HandleFunc("GET /issuers/"+is.KeyLabel+".cer", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/pkix-cert")
			w.Write(der)
		})
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /crl/", publisher)
	readiness, err := newReadiness(authority, publisher, log)
	if err != nil {
		return err
	}
	mux.HandleFunc("GET /healthz", health.Live) // liveness
	mux.Handle("GET /readyz", readiness)        // readiness: HSM, CRL freshness
	mux.HandleFunc("GET /cps", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "Shomei certification practice statement: certificates are issued under the JPKI-style rules of the Shomei rule book.")
	})

	return server.Run(ctx, server.Options{
		GRPCListen: cfg.Server.GRPCListen, HTTPListen: cfg.Server.HTTPListen, GRPCTLS: grpcTLS,
		Register: func(s *grpc.Server) {
			cav1.RegisterCertificateAuthorityServer(s, svc)
			cav1.RegisterEventsServer(s, svc.Events())
			cav1.RegisterReplicationServer(s, replication)
		},
		Health: func(hs *grpchealth.Server, services []string) {
			go readiness.Follow(bgCtx, hs, services, healthFollowEvery)
		},
		HTTP:            responder.InFront(mux),
		ShutdownTimeout: cfg.Server.ShutdownTimeout,
		Ready:           ready,
		Log:             log,
	})
}

// clientAuthorizer admits municipal systems and OCSP replicas.
type clientAuthorizer interface {
	service.Authorizer
	service.ReplicaAuthorizer
}

// authorizer admits the configured clients, or anyone when none are
// configured and the API listens on loopback only.
func authorizer(cfg *config.Config, log *slog.Logger) (clientAuthorizer, error) {
	if len(cfg.Clients) == 0 {
		if !config.IsLoopback(cfg.Server.GRPCListen) {
			return nil, errors.New("no clients configured: refusing to serve the API on a non-loopback address without client tokens")
		}
		log.Warn("no clients configured: any local caller may act for any municipality (development only)")
		return service.Open{}, nil
	}
	var clients []service.Client
	for _, c := range cfg.Clients {
		token, err := clienttoken.Read(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("client %s: %w", c.Name, err)
		}
		clients = append(clients, service.Client{Name: c.Name, Token: token, Municipalities: c.Municipalities, Replica: c.Replica})
	}
	return service.NewTokenAuthorizer(clients)
}
