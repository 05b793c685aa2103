package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/ca/service"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/internal/command"
	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/internal/ratelimit"
	"github.com/shomei-pki/shomei/internal/server"
	"github.com/shomei-pki/shomei/internal/x509enc"
	"github.com/shomei-pki/shomei/propagation"
	"github.com/shomei-pki/shomei/relyingparty"
	"github.com/shomei-pki/shomei/repository"
)

// errUninitialized: the store has no issuers. shomei-ca never runs the key
// ceremony itself, so that a wrong store path cannot mint new issuer keys.
var errUninitialized = errors.New("the store has no issuers")

// opened is what run opens and checks before it serves.
type opened struct {
	cfg              *config.Config
	st               *store.Store
	tok              *hsm.Token
	auth             clientAuthorizer
	grpcGate         *service.Gate
	grpcTLS, httpTLS *tls.Config
	gateConfig       relyingparty.Config
	// auditMetrics count the audit log's verifications: at start, before
	// each checkpoint, at VerifyAudit.
	auditMetrics *audit.VerifyMetrics
}

// run starts the CA and serves until ctx ends. ready, if set, gets the bound
// addresses (tests use it).
func run(ctx context.Context, configPath string, log *slog.Logger, ready func(grpcAddr, httpAddr net.Addr)) error {
	command.TuneGC(log)
	o := &opened{}
	var err error
	if o.cfg, err = config.Load(configPath); err != nil {
		return err
	}
	// The clients' tokens and the TLS files are read before anything else,
	// so that a mistake in them stops the CA before it touches the HSM.
	if o.auth, o.grpcGate, err = authorizer(o.cfg, log); err != nil {
		return err
	}
	if o.grpcTLS, err = o.cfg.GRPCTLS(); err != nil {
		return err
	}
	if o.httpTLS, err = o.cfg.HTTPAccess.ServerTLS(); err != nil {
		return err
	}
	if o.gateConfig, err = o.cfg.HTTPAccess.GateConfig(); err != nil {
		return err
	}
	if o.st, err = o.cfg.Store.Open(store.Options{}); err != nil {
		return err
	}
	defer o.st.Close()
	if o.tok, err = o.cfg.OpenHSM(); err != nil {
		return err
	}
	defer o.tok.Close()
	if done, err := o.st.Initialized(); err != nil {
		return err
	} else if !done {
		return fmt.Errorf("store %s: %w (empty, or not this CA's store); shomei-ca does not create issuer keys itself: "+
			"run the key ceremony with `shomeictl init` (shomeictl --config %s init) first, or correct the store: section",
			o.st.Where(), errUninitialized, configPath)
	}

	o.auditMetrics = audit.NewVerifyMetrics()
	checkpoints, err := startAuditCheckpoints(ctx, o.cfg, o.st, o.tok, o.auditMetrics, log)
	if err != nil {
		return err
	}
	// The background work writes audit records too, and so do the gRPC
	// handlers: at a stop the work is ended and waited for, then the last
	// checkpoint is signed and the log sealed in the HSM's witness, before
	// the store and the token close (deferred above). The log is sealed
	// only when the work ended and server.Run saw every handler end (not
	// server.ErrHandlersRunning).
	bg := command.NewBackground(ctx)
	err = serve(ctx, bg, o, checkpoints, log, ready)
	quiet := bg.Stop(backgroundStopTimeout)
	if !quiet {
		log.Warn("background work still running at stop: the audit log is left unsealed", "waited", backgroundStopTimeout)
	}
	checkpoints.stop(quiet && !errors.Is(err, server.ErrHandlersRunning))
	return err
}

// serve builds the CA and what publishes its statuses, in dependency
// order, and serves until ctx ends.
func serve(ctx context.Context, bg *command.Background, o *opened, checkpoints *checkpointer, log *slog.Logger, ready func(grpcAddr, httpAddr net.Addr)) error {
	cfg, st := o.cfg, o.st
	reg := command.NewRegistry()
	if err := reg.Register(o.grpcGate); err != nil {
		return err
	}
	metrics, err := ca.NewMetrics(reg)
	if err != nil {
		return err
	}
	if err := o.tok.RegisterMetrics(reg); err != nil {
		return err
	}
	if err := st.RegisterSizeMetric(reg); err != nil {
		return err
	}
	if err := o.auditMetrics.Register(reg); err != nil {
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
	// Revocations wake the propagation at once (the OCSP cache, the CRL
	// publisher, the replicas' stream); it also polls the store's
	// status-change log (R-R4).
	changed := propagation.NewNotifier()
	issuerConfig, err := cfg.IssuerConfig()
	if err != nil {
		return err
	}
	// A change of the issuer key generations (rotation, retirement, …)
	// is published live by generations.Run (ca.Config.OnIssuersChanged:
	// issuersChanged.Notify).
	issuersChanged := propagation.NewNotifier()
	authority, err := ca.New(ctx, ca.Config{
		Store: st, Token: o.tok, Profile: pcfg, CRLBaseURL: cfg.Server.PublicURL + "/crl",
		CRLShardSize: cfg.Certificates.CRLShardSize, AllowECDSAP256: cfg.Certificates.AllowECDSAP256, Log: log, Metrics: metrics,
		Responders:       responderPolicy(cfg),
		SharedStore:      st.Shared(),
		OnStatusChange:   changed.Notify,
		OnIssuersChanged: issuersChanged.Notify,
		Issuers:          issuerConfig,
	})
	if err != nil {
		return err
	}
	// The activation timer of PENDING generations writes to the store and
	// the audit log: it ends before they are sealed and closed.
	defer authority.Close()
	responder, keeper, presigner, err := startOCSP(ctx, bg, cfg, st, o.tok, authority, reg, log)
	if err != nil {
		return fmt.Errorf("OCSP responder: %w", err)
	}
	// The replicas' streams end when the CA starts to stop (ctx), so
	// that the graceful stop does not wait for them.
	replication, err := service.NewReplication(service.ReplicationConfig{
		CA: authority, Store: st, Auth: o.auth, Log: log, Stopping: ctx.Done(),
	})
	if err != nil {
		return err
	}
	prop, err := propagation.New(propagation.Config{
		Notifier: changed, Changes: st, Cache: responder, Replication: replication,
		CRL: crl.PublisherConfig{Source: st, Issuers: authority.IssuerSigner},
		Log: log, Metrics: reg,
	})
	if err != nil {
		return err
	}
	// What is published per generation follows the store from here on;
	// the first sync is done before the CRL publisher runs, so that a
	// retired generation is never published.
	issuerFiles := repository.NewIssuers()
	gens, err := newGenerations(generationsConfig{
		Records: st, Keeper: keeper, Responder: responder, CRL: prop.Publisher(), Files: issuerFiles,
		Changed: issuersChanged, Log: log,
	})
	if err != nil {
		return err
	}
	if err := gens.Sync(ctx); err != nil {
		return fmt.Errorf("issuer generations: %w", err)
	}
	leader, err := newLeadership(st, authority, prop.Publisher(), checkpoints, presigner, reg, log)
	if err != nil {
		return err
	}
	bg.Go(gens.Run)
	bg.Go(prop.Run)
	bg.Go(leader.Run)
	// Other CA processes on a shared store: their status changes and key
	// operations reach this one at once, not at the next poll.
	bg.Go(func(ctx context.Context) { st.WatchStatusChanges(ctx, changed.Notify) })
	bg.Go(func(ctx context.Context) {
		st.WatchIssuers(ctx, func() {
			if err := authority.Reload(ctx); err != nil && ctx.Err() == nil {
				log.Error("reloading the issuer key generations another CA process changed", "error", err)
			}
		})
	})
	refusals, err := audit.NewRefusals(audit.RefusalsConfig{Store: st, Metrics: reg, Log: log})
	if err != nil {
		return err
	}
	refusedUnary, refusedStream := service.RefusalInterceptors(refusals)
	o.grpcGate.AuditRefusals(refusals)
	svc, err := service.New(authority, o.auth, log)
	if err != nil {
		return err
	}
	// Who may ask for status, and how often (R-R6, issue #9 items 5-6).
	gateConfig := o.gateConfig
	gateConfig.Log, gateConfig.Metrics = log, reg
	statusGate, err := relyingparty.New(gateConfig)
	if err != nil {
		return err
	}
	readiness, err := newReadiness(authority, prop.Publisher(), log)
	if err != nil {
		return err
	}
	// The public repository page: what the certificates name (their OCSP
	// and CPS URLs) and what is published, from memory.
	var ocspURLs []string
	if pcfg.OCSPURL != "" {
		ocspURLs = []string{pcfg.OCSPURL}
	}
	page, err := repository.New(repository.Config{Issuers: issuerFiles, CRLs: prop.Publisher(),
		PublicURL: cfg.Server.PublicURL, CPSURL: cfg.Certificates.CPSURL, OCSPURLs: ocspURLs, Log: log})
	if err != nil {
		return err
	}
	mux := newMux(issuerFiles, page, reg, statusGate, prop.Publisher(), readiness)
	operations, err := newOperations(o, authority, reg, ctx.Done(), log)
	if err != nil {
		return err
	}
	// Approved proposals left running by the previous process (an issuer
	// compromise half done) go on; approved compromises run here.
	bg.Go(operations.Approvals.Run)
	return server.Run(ctx, server.Options{
		GRPCListen: cfg.Server.GRPCListen, HTTPListen: cfg.Server.HTTPListen, GRPCTLS: o.grpcTLS,
		Register: func(s *grpc.Server) {
			cav1.RegisterCertificateAuthorityServer(s, svc)
			cav1.RegisterEventsServer(s, svc.Events())
			cav1.RegisterReplicationServer(s, replication)
			opsv1.RegisterOperationsServer(s, operations)
		},
		// The refusal auditor goes inside the authenticating gate, so that
		// it sees the caller (ca/caller).
		ServerOptions: append(o.grpcGate.ServerOptions(),
			grpc.ChainUnaryInterceptor(refusedUnary), grpc.ChainStreamInterceptor(refusedStream)),
		HTTP:       responder.Route(statusGate.Guard("ocsp", responder, responder.Unauthorized()), mux),
		HTTPTLS:    o.httpTLS,
		GRPCLimits: grpcLimits(cfg.Server.GRPCLimits),
		HTTPLimits: cfg.Server.HTTPLimits,
		Metrics:    reg,
		Health: func(hs *grpchealth.Server, services []string) {
			bg.Go(func(ctx context.Context) { readiness.Follow(ctx, hs, services, healthFollowEvery) })
		},
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
		clients = append(clients, service.Client{Name: c.Name, Token: token, Municipalities: c.Municipalities, Replica: c.Replica, Operator: c.Operator,
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
