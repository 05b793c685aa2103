// Command shomei-ca runs the Shomei certificate authority: the gRPC API for
// municipal systems (default 127.0.0.1:8443, with health and reflection) and
// the HTTP listener for relying parties and monitoring (default
// 127.0.0.1:8080: the repository page at / and /index.json, the issuer
// certificates at /issuers/, the CRLs at /crl/, the CPS, /metrics, /healthz
// for liveness, /readyz for readiness).
//
// It never runs the key ceremony itself: over a store without issuers
// (empty, or a wrong store.path) it refuses to start, naming the store and
// `shomeictl init`, so that a mistake cannot mint new issuer keys. The
// development set-up (`make run`) runs `shomeictl init --existing-ok`
// first. It stops gracefully on SIGTERM or SIGINT.
//
// main only wires: the CA (package ca), what carries its status changes to
// OCSP, the CRLs and the replicas (package propagation), and the listeners
// (internal/server), with the plumbing the binaries share
// (internal/command).
//
//	shomei-ca --config var/shomei.yaml
package main
