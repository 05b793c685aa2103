package main

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/shomei-pki/shomei/internal/gctuning"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/ca/service"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/internal/health"
	"github.com/shomei-pki/shomei/internal/ratelimit"
	"github.com/shomei-pki/shomei/internal/server"
	"github.com/shomei-pki/shomei/internal/x509enc"
	"github.com/shomei-pki/shomei/ocsp"
	"github.com/shomei-pki/shomei/relyingparty"
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
	auth, grpcGate, err := authorizer(cfg, log)
	if err != nil {
		return err
	}
	grpcTLS, err := cfg.GRPCTLS()
	if err != nil {
		return err
	}
	httpTLS, err := cfg.HTTPAccess.ServerTLS()
	if err != nil {
		return err
	}
	gateConfig, err := cfg.HTTPAccess.GateConfig()
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

	checkpoints, err := startAuditCheckpoints(ctx, cfg, st, tok, log)
	if err != nil {
		return err
	}
	// The background work (below) writes audit records too: at a stop it
	// is ended and waited for, then the last checkpoint is signed and the
	// log sealed in the HSM's witness, before the store and the token
	// close (deferred after them, so run before).
	// The gRPC handlers write too: the log is sealed only when server.Run
	// has seen them all end (not server.ErrHandlersRunning).
	var background sync.WaitGroup
	var stopBackground context.CancelFunc = func() {}
	handlersEnded := true
	defer func() {
		stopBackground()
		quiet := waitFor(&background, backgroundStopTimeout, log)
		checkpoints.stop(quiet && handlersEnded)
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := reg.Register(grpcGate); err != nil {
		return err
	}
	metrics, err := ca.NewMetrics(reg)
	if err != nil {
		return err
	}
	pcfg := profile.Config{CPSURL: cfg.Certificates.CPSURL}
	if cfg.OCSPEnabled() {
		pcfg.OCSPURL = cfg.Server.PublicURL + "/ocsp"
	}
	if len(cfg.Certificates.IssuerAltName) > 0 {
		if pcfg.IssuerAltName, err = x509enc.ParseDN(cfg.Certificates.IssuerAltName); err != nil {
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
		Responders:     responderPolicy(cfg),
		OnStatusChange: func() { follow.Notify(); publisher.Notify(); replication.Notify() },
	})
	if err != nil {
		return err
	}
	bgCtx, cancelBackground := context.WithCancel(ctx)
	stopBackground = cancelBackground
	if responder, err = startOCSP(bgCtx, &background, cfg, st, tok, authority, reg, log); err != nil {
		return fmt.Errorf("OCSP responder: %w", err)
	}
	if follow, err = newFollower(st, responder.Invalidate, reg, log); err != nil {
		return err
	}
	publisher, err = crl.NewPublisher(crl.PublisherConfig{Source: st, Issuers: authority.IssuerSigner, Log: log, Published: follow.published, Metrics: reg})
	if err != nil {
		return err
	}
	background.Go(func() { follow.run(bgCtx) })
	background.Go(func() { checkpoints.Run(bgCtx) })
	background.Go(func() { publisher.Run(bgCtx) })
	refusals, err := audit.NewRefusals(audit.RefusalsConfig{Store: st, Metrics: reg, Log: log})
	if err != nil {
		return err
	}
	refusedUnary, refusedStream := service.RefusalInterceptors(refusals)
	grpcGate.AuditRefusals(refusals)
	svc, err := service.New(authority, auth, log)
	if err != nil {
		return err
	}
	replication, err = service.NewReplication(service.ReplicationConfig{
		CA: authority, Store: st, Auth: auth, Log: log,
	})
	if err != nil {
		return err
	}

	issuers, err := issuer.Load(st)
	if err != nil {
		return err
	}
	// Who may ask for status, and how often (R-R6, issue #9 items 5-6).
	gateConfig.Log, gateConfig.Metrics = log, reg
	statusGate, err := relyingparty.New(gateConfig)
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
	mux.Handle("GET /crl/", statusGate.Guard("crl", publisher, relyingparty.Forbidden))
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

	err = server.Run(ctx, server.Options{
		GRPCListen: cfg.Server.GRPCListen, HTTPListen: cfg.Server.HTTPListen, GRPCTLS: grpcTLS,
		Register: func(s *grpc.Server) {
			cav1.RegisterCertificateAuthorityServer(s, svc)
			cav1.RegisterEventsServer(s, svc.Events())
			cav1.RegisterReplicationServer(s, replication)
		},
		// The refusal auditor goes inside the authenticating gate, so that
		// it sees the caller (ca/caller).
		ServerOptions: append(grpcGate.ServerOptions(),
			grpc.ChainUnaryInterceptor(refusedUnary), grpc.ChainStreamInterceptor(refusedStream)),
		HTTP:       responder.Route(statusGate.Guard("ocsp", responder, responder.Unauthorized()), mux),
		HTTPTLS:    httpTLS,
		GRPCLimits: grpcLimits(cfg.Server.GRPCLimits),
		HTTPLimits: cfg.Server.HTTPLimits,
		Metrics:    reg,
		Health: func(hs *grpchealth.Server, services []string) {
			background.Go(func() { readiness.Follow(bgCtx, hs, services, healthFollowEvery) })
		},
		ShutdownTimeout: cfg.Server.ShutdownTimeout,
		Ready:           ready,
		Log:             log,
	})
	handlersEnded = !errors.Is(err, server.ErrHandlersRunning)
	return err
}

// clientAuthorizer admits municipal systems and OCSP replicas.
type clientAuthorizer interface {
	service.Authorizer
	service.ReplicaAuthorizer
}

// authorizer admits the configured clients, or anyone when none are
// configured and the API listens on loopback only; the gate authenticates
// and rate-limits every call before the server reads its body.
func authorizer(cfg *config.Config, log *slog.Logger) (clientAuthorizer, *service.Gate, error) {
	limits := cfg.Server.RateLimits
	gcfg := service.GateConfig{
		ClientLimit:  ratelimit.Limit{Rate: limits.ClientRate, Burst: limits.ClientBurst},
		FailureLimit: ratelimit.Limit{Rate: limits.FailureRate, Burst: limits.FailureBurst},
	}
	if len(cfg.Clients) == 0 {
		if !config.IsLoopback(cfg.Server.GRPCListen) {
			return nil, nil, errors.New("no clients configured: refusing to serve the API on a non-loopback address without client tokens")
		}
		log.Warn("no clients configured: any local caller may act for any municipality (development only)")
		gate, err := service.NewGate(gcfg)
		return service.Open{}, gate, err
	}
	var clients []service.Client
	for _, c := range cfg.Clients {
		token, err := clienttoken.Read(c.TokenFile)
		if err != nil {
			return nil, nil, fmt.Errorf("client %s: %w", c.Name, err)
		}
		clients = append(clients, service.Client{Name: c.Name, Token: token, Municipalities: c.Municipalities, Replica: c.Replica,
			TLSName: c.TLSName, Limit: ratelimit.Limit{Rate: c.Rate, Burst: c.Burst}})
	}
	auth, err := service.NewTokenAuthorizer(clients)
	if err != nil {
		return nil, nil, err
	}
	gcfg.Clients = auth
	gate, err := service.NewGate(gcfg)
	return auth, gate, err
}

// grpcLimits are the configured gRPC limits, with the receive limit sized
// to the largest valid request (ca.MaxRequestBytes) unless configured.
func grpcLimits(l server.GRPCLimits) server.GRPCLimits {
	if l.MaxRecvMsgSize == 0 {
		l.MaxRecvMsgSize = ca.MaxRequestBytes
	}
	return l
}
