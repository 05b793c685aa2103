package main

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

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
func newMux(issuers *issuerFiles, reg *prometheus.Registry, statusGate *relyingparty.Gate, publisher *crl.Publisher, readiness *health.Checker) *http.ServeMux {
	mux := http.NewServeMux()
	// Issuer and link certificates for relying parties, from the live set
	// of generations: /issuers/shomei-sign-g1.pem, …
	mux.Handle(issuersRoute, issuers)
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

// issuerFiles serves /issuers/: for every issuer key generation its
// self-signed certificate and its link certificates (R-K1) as
// issuer.Published names them, each as <name>.pem and <name>.cer (DER),
// and issuers.pem, the bundle of every generation's self-signed
// certificate (the trust anchors; links are paths, not anchors). set
// replaces the whole set at once; a request sees the old or the new one.
type issuerFiles struct {
	files atomic.Pointer[map[string]issuerFile]
}

type issuerFile struct {
	contentType string
	body        []byte
}

// issuersRoute is where issuerFiles is mounted.
const issuersRoute = "GET /issuers/{file}"

// bundleFile is the name of the bundle of trust anchors.
const bundleFile = "issuers.pem"

func newIssuerFiles() *issuerFiles {
	f := &issuerFiles{}
	f.files.Store(&map[string]issuerFile{})
	return f
}

// set publishes the certificates of issuers (issuer.Load's).
func (f *issuerFiles) set(issuers []issuer.Issuer) {
	files := map[string]issuerFile{}
	var bundle []byte
	for _, c := range issuer.Published(issuers) {
		block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
		files[c.Name+".pem"] = issuerFile{"application/x-pem-file", block}
		files[c.Name+".cer"] = issuerFile{"application/pkix-cert", c.DER}
		if !c.Link {
			bundle = append(bundle, block...)
		}
	}
	files[bundleFile] = issuerFile{"application/x-pem-file", bundle}
	f.files.Store(&files)
}

func (f *issuerFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	file, ok := (*f.files.Load())[name]
	if !ok || strings.ContainsRune(name, '/') {
		http.Error(w, "no such issuer certificate", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", file.contentType)
	w.Write(file.body)
}
