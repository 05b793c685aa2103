package main

import (
	"encoding/pem"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/internal/health"
	"github.com/shomei-pki/shomei/relyingparty"
)

// newMux is the HTTP listener's routes besides OCSP: the issuer
// certificates, the CRLs behind the relying-party gate, the metrics,
// liveness, readiness and the CPS.
func newMux(issuers []issuer.Issuer, reg *prometheus.Registry, statusGate *relyingparty.Gate, publisher *crl.Publisher, readiness *health.Checker) *http.ServeMux {
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
	mux.HandleFunc("GET /healthz", health.Live) // liveness
	mux.Handle("GET /readyz", readiness)        // readiness: HSM, CRL freshness
	mux.HandleFunc("GET /cps", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "Shomei certification practice statement: certificates are issued under the JPKI-style rules of the Shomei rule book.")
	})
	return mux
}
