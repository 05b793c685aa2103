// Command shomei-ca runs the Shomei certificate authority: the gRPC API for
// municipal systems (default 127.0.0.1:8443, with health and reflection) and
// the HTTP listener for relying parties and monitoring (default
// 127.0.0.1:8080: the CPS, /metrics, /healthz for liveness, /readyz for readiness).
//
// On its first start over an empty store it runs the key ceremony, so the
// development set-up (`make run`) needs nothing else. It stops gracefully on
// SIGTERM or SIGINT.
//
//	shomei-ca --config var/shomei.yaml
package main
