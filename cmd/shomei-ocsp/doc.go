// Command shomei-ocsp is an OCSP replica for scale-out (R-R6): it follows
// a CA's Replication stream into its own bbolt file (ocsp/replica), signs
// responses with its own delegated responder keys — generated in its HSM,
// certified by the CA over gRPC, renewed before they expire
// (ocsp/responders) — and serves POST /ocsp and GET /ocsp/{request} over
// HTTP, with /metrics and /healthz. While the CA is down it keeps
// answering from its copy; when the CA is back it resumes from the
// revision it had, without a new snapshot.
package main
