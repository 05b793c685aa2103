// Package health answers "is this process alive" and "should it get
// traffic" for the binaries, over HTTP and the gRPC health service.
//
// Liveness (/healthz) is simple: the process serves HTTP. Readiness
// (/readyz, and the gRPC health status of every service) is the conjunction
// of named checks — for shomei-ca the HSM, the freshness of every CRL
// partition; for shomei-ocsp the age of its last sync with the CA — each
// answering ready, ready but degraded (with a note), or not ready (with the
// reason). A probe never does expensive work: each check's result is kept
// for its own interval (an HSM check is a session and a key look-up, at most
// once every few seconds, never a signature per probe), and the gRPC status
// is refreshed by a background loop, not by the callers.
//
// Reasons and notes name components, partitions and serials, never personal
// data (R-P4).
package health
