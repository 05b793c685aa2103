// Command shomei-ocsp is an OCSP replica for scale-out (R-R6): it follows
// a CA's Replication stream into its own bbolt file (ocsp/replica), signs
// responses with its own delegated responder keys — generated in its HSM,
// certified by the CA over gRPC, renewed before they expire
// (ocsp/responders) — and serves POST /ocsp and GET /ocsp/{request} over
// HTTP, with /metrics, /healthz (200 once it has synced with the CA) and
// /readyz (503 when it has not heard from the CA for over 30 s, saying
// since when). While the CA is down it keeps
// answering from its copy; when the CA is back it resumes from the
// revision it had, without a new snapshot.
package main
