package main

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/internal/health"
	"github.com/shomei-pki/shomei/internal/server"
	"github.com/shomei-pki/shomei/relyingparty"
	"github.com/shomei-pki/shomei/repository"
)

// newMux is the HTTP listener's routes besides OCSP: the repository page
// and its JSON, the issuer certificates, the CRLs, the metrics, liveness,
// readiness and the CPS. The CRLs, their listing and the repository page
// (which lists them) are behind the relying-party gate (R-R6): limited per
// address, and refused to unregistered callers in registered mode, as
// /metrics is in registered mode (its CRL series list the partitions); the
// issuer certificates and the CPS are public.
func newMux(issuers *repository.Issuers, page *repository.Page, reg *prometheus.Registry, statusGate *relyingparty.Gate, publisher *crl.Publisher, readiness *health.Checker) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", statusGate.Guard("repository", http.HandlerFunc(page.ServeHTML), relyingparty.Forbidden))
	mux.Handle("GET "+repository.JSONPath, statusGate.Guard("repository", http.HandlerFunc(page.ServeJSON), relyingparty.Forbidden))
	mux.HandleFunc("GET "+repository.StylePath, page.ServeStyle)
	// Issuer and link certificates for relying parties, from the live set
	// of generations: /issuers/shomei-sign-g1.pem, …
	mux.HandleFunc("GET /issuers/{$}", page.ServeIssuerList)
	mux.Handle(issuersRoute, issuers)
	// In registered mode /metrics is behind the gate too: its shomei_crl_*
	// series list the CRLs as the page does. One rendering at a time,
	// shared by the requests that wait for it (server.MetricsHandler).
	mux.Handle("GET /metrics", statusGate.GuardRegistered("metrics", server.MetricsHandler(reg), relyingparty.Forbidden))
	mux.Handle("GET /crl/{$}", statusGate.Guard("crl", http.HandlerFunc(page.ServeCRLList), relyingparty.Forbidden))
	mux.Handle("GET /crl/", statusGate.Guard("crl", publisher, relyingparty.Forbidden))
	mux.HandleFunc("GET /healthz", health.Live) // liveness
	mux.Handle("GET /readyz", readiness)        // readiness: HSM, CRL freshness
	mux.HandleFunc("GET "+repository.CPSPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "Shomei certification practice statement: certificates are issued under the JPKI-style rules of the Shomei rule book.")
	})
	return mux
}

// issuersRoute is where the issuer certificates are mounted.
const issuersRoute = "GET " + repository.IssuersPath + "{file}"
