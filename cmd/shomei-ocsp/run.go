package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/internal/command"
	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/internal/server"
	"github.com/shomei-pki/shomei/ocsp/replica"
	"github.com/shomei-pki/shomei/ocsp/responders"
)

func run(ctx context.Context, configPath string, log *slog.Logger) error {
	command.TuneGC(log)
	r, err := openReplica(ctx, configPath, log)
	if err != nil {
		return err
	}
	defer r.close()
	// The background work (responder renewal, following the CA) ends and
	// is waited for before the store and the token close.
	bg := command.NewBackground(ctx)
	defer bg.Stop(backgroundStopTimeout)
	cfg, st := r.cfg, r.st

	reg := command.NewRegistry()
	source := replica.NewSource(st, r.byName)
	responder, err := command.StartResponder(ctx, bg, command.ResponderConfig{
		Settings: cfg.OCSP, Keeper: r.keeper, Source: source, Presigned: source, Log: log, Metrics: reg,
	})
	if err != nil {
		return err
	}
	// The replica pre-signs with its own responder keys into its own
	// store (ocsp.presign; nil when off).
	presigner, err := command.NewPresigner(cfg.OCSP, responder, source, log, reg)
	if err != nil {
		return err
	}
	if presigner != nil {
		bg.Go(presigner.Run)
	}
	gate, httpTLS, err := statusGate(cfg.HTTPAccess, reg, log)
	if err != nil {
		return err
	}
	// The CA's issuer generations change while the replica runs (R-K1):
	// a new one is noticed on the Follow stream or at the next poll.
	gens, err := replica.NewGenerations(replica.GenerationsConfig{Client: r.client, Store: st, Source: source,
		Keeper: r.keeper, Responder: responder, Log: log})
	if err != nil {
		return err
	}
	bg.Go(gens.Run)
	follower, err := replica.NewFollower(replica.FollowerConfig{Store: st, Client: r.client, Invalidate: responder.Invalidate,
		Issuers: gens, Metrics: reg, Log: log})
	if err != nil {
		return err
	}
	bg.Go(follower.Run)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", server.MetricsHandler(reg))
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
	return server.Run(ctx, server.Options{
		HTTPListen: cfg.HTTPListen, HTTP: responder.Route(gate.Guard("ocsp", responder, responder.Unauthorized()), mux),
		HTTPTLS: httpTLS, HTTPLimits: cfg.HTTPLimits, Metrics: reg,
		LogAttrs: []any{"ca", cfg.CA.Address, "replica", cfg.Name},
		Log:      log,
	})
}

// backgroundStopTimeout bounds the wait for the background work at a stop.
const backgroundStopTimeout = 10 * time.Second

// openedReplica is what both the replica and --print-responder-keys open:
// its configuration, store, HSM token, connection to the CA and the keeper
// of its responders.
type openedReplica struct {
	cfg    *config.Replica
	st     *replica.Store
	tok    *hsm.Token
	conn   *grpc.ClientConn
	client cav1.ReplicationClient
	keeper *responders.Keeper
	byName map[string]*x509.Certificate
}

// openReplica reads the configuration at configPath and opens the
// replica's store and HSM token, connects to the CA and makes the keeper.
func openReplica(ctx context.Context, configPath string, log *slog.Logger) (_ *openedReplica, err error) {
	r := &openedReplica{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if r.cfg, err = config.LoadReplica(configPath); err != nil {
		return nil, err
	}
	if r.st, err = replica.Open(r.cfg.Store.Path); err != nil {
		return nil, err
	}
	if r.tok, err = r.cfg.HSM.Open(); err != nil {
		return nil, err
	}
	if r.conn, r.client, err = dialCA(r.cfg); err != nil {
		return nil, err
	}
	if r.keeper, r.byName, err = newKeeper(ctx, r.cfg, r.client, r.st, r.tok, log); err != nil {
		return nil, err
	}
	return r, nil
}

// close closes what openReplica opened, last first.
func (r *openedReplica) close() {
	if r.conn != nil {
		r.conn.Close()
	}
	if r.tok != nil {
		r.tok.Close()
	}
	if r.st != nil {
		r.st.Close()
	}
}

// dialCA connects to the CA's Replication service.
func dialCA(cfg *config.Replica) (*grpc.ClientConn, cav1.ReplicationClient, error) {
	opts, err := clienttoken.Dial{TokenFile: cfg.CA.TokenFile, CAFile: cfg.CA.TLSCAFile,
		CertFile: cfg.CA.TLSCertFile, KeyFile: cfg.CA.TLSKeyFile}.Options()
	if err != nil {
		return nil, nil, fmt.Errorf("ca.token_file / ca.tls_ca_file / ca.tls_cert_file / ca.tls_key_file: %w", err)
	}
	// Reconnect within about a second of the CA's return (issue 13).
	conn, err := grpc.NewClient(cfg.CA.Address, append(opts, grpc.WithConnectParams(replica.ConnectParams()))...)
	if err != nil {
		return nil, nil, fmt.Errorf("ca.address: %w", err)
	}
	return conn, cav1.NewReplicationClient(conn), nil
}

// newKeeper makes the keeper of the replica's responders, one per issuer
// key generation the CA lets it serve.
func newKeeper(ctx context.Context, cfg *config.Replica, client cav1.ReplicationClient, st *replica.Store, tok *hsm.Token, log *slog.Logger) (*responders.Keeper, map[string]*x509.Certificate, error) {
	list, err := replica.Issuers(ctx, client, st, log)
	if err != nil {
		return nil, nil, err
	}
	targets, byName, err := replica.Targets(list)
	if err != nil {
		return nil, nil, err
	}
	keeper, err := command.NewKeeper(cfg.OCSP, responders.Config{
		Token: tok, Targets: targets, KeyPrefix: "shomei-ocsp-" + cfg.Name,
		Certifier: replica.RemoteCertifier{Client: client}, Store: st, Log: log,
	})
	return keeper, byName, err
}

// printResponderKeys writes, one a line, each responder key's issuer,
// HSM label and pin, for the operator to enroll on the CA:
//
//	clients:
//	  - name: replica1
//	    replica: true
//	    responder_keys: ["sha256:…", "sha256:…"]
func printResponderKeys(ctx context.Context, configPath string, out io.Writer, log *slog.Logger) error {
	r, err := openReplica(ctx, configPath, log)
	if err != nil {
		return err
	}
	defer r.close()
	keys, err := r.keeper.Keys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := fmt.Fprintf(out, "%s\t%s\t%s\n", k.Issuer, k.Label, k.Pin); err != nil {
			return err
		}
	}
	return nil
}
