package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/internal/gctuning"
	"github.com/shomei-pki/shomei/ocsp"
)

// presignConfig tells the presign server process what to serve.
type presignConfig struct {
	responderFiles
	// Store is the CA store (bbolt) holding the certificate records.
	Store string
	// The pre-signer's budget and workers, the responder's cache.
	Budget    float64
	Workers   int
	CacheSize int
	Validity  time.Duration
}

const presignConfigFile = "presign.json"

// presignServe runs the presign server process: Shomei's responder over
// the CA store, its pre-signer running from the start, and the metrics,
// on 127.0.0.1, until stdin closes or ctx ends.
func presignServe(ctx context.Context, dir string, stdin io.Reader, stdout io.Writer) error {
	gctuning.Apply()
	var cfg presignConfig
	if err := readChildConfig(dir, presignConfigFile, &cfg); err != nil {
		return err
	}
	tok, is, err := cfg.open(ctx, cfg.Workers+4)
	if err != nil {
		return err
	}
	defer tok.Close()
	issuer := is.Certificate
	st, err := store.Open(cfg.Store, store.Options{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer st.Close()
	responses := ca.OCSPResponses{Store: st, Issuer: func(p ca.Profile, generation uint32) *x509.Certificate {
		if p == storev1.Profile_PROFILE_SIGN && generation == 1 {
			return issuer
		}
		return nil
	}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	responder, err := ocsp.New(ocsp.Config{
		Issuers:   []*ocsp.Issuer{is},
		Source:    storeSource{st: st, issuer: issuer},
		Presigned: responses,
		CacheSize: cfg.CacheSize,
		Validity:  cfg.Validity,
		// Requests without a nonce are never budgeted; misses are signed.
		SignatureBudget: -1,
		Log:             log,
		Metrics:         reg,
	})
	if err != nil {
		return err
	}
	presigner, err := ocsp.NewPresigner(ocsp.PresignConfig{Responder: responder, Store: responses,
		Budget: cfg.Budget, Workers: cfg.Workers, Log: log, Metrics: reg})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/", debugMux(reg))
	mux.HandleFunc("/debug/heap", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(w, "heap_inuse_bytes %d\n", m.HeapInuse)
	})
	var addrs serveAddrs
	return serveChild(ctx, stdin, stdout, &addrs, []childServer{
		{responder, &addrs.Shomei, "http://%s" + ocsp.DefaultPath},
		{mux, &addrs.Metrics, "http://%s/metrics"},
	}, presigner.Run)
}

// storeSource answers the statuses the pre-signed responses do not, from
// the CA store's records as the CA does (ca.OCSPSource, which needs a
// running CA): unknown unless issued by the benchmark's issuer.
type storeSource struct {
	st     *store.Store
	issuer *x509.Certificate
}

func (s storeSource) Status(_ context.Context, is *ocsp.Issuer, serial *big.Int) (ocsp.Status, error) {
	rec, err := s.st.Certificate(serial.Bytes())
	if errors.Is(err, store.ErrNotFound) || (err == nil && !is.Certificate.Equal(s.issuer)) {
		return ocsp.Status{Status: ocsp.Unknown}, nil
	}
	if err != nil {
		return ocsp.Status{}, err
	}
	return ocsp.RecordedStatus(rec.State == storev1.CertState_CERT_STATE_ISSUED, rec.GetRevocation()), nil
}
