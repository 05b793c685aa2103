// Package server runs Shomei's network listeners: a gRPC server with the
// standard health service and server reflection (so grpcurl works without
// proto files), and an HTTP server, or either alone (the OCSP replica
// serves HTTP only), until the context ends; then it stops both
// gracefully, letting requests in flight finish within a deadline. No
// caller can hold the stop: HTTP requests get HTTPLimits.StopGrace (1 s),
// and gRPC calls that do no work (no request message yet, health watches,
// reflection streams: callTracker) are cancelled after stalledGrace (1 s).
//
// It owns the listeners' limits (issue 9, item 3), separate for each so
// that no load on the public HTTP side takes the municipal systems' gRPC
// API down:
//
//   - a cap on open connections per listener, and optionally per client
//     address (limitListener): a connection over it is accepted and reset
//     at once, before any TLS, HTTP or HTTP/2
//     work, and counted in shomei_server_connections_refused_total; the
//     caps are lowered at start to fit RLIMIT_NOFILE (FitToFileLimit), so
//     both listeners full never exhaust the process's descriptors;
//   - HTTP: read-header, read (whole request), idle timeouts, and a write
//     timeout per 64 KiB of response (progressWriter) up to a maximum
//     response time, so a client that stops reading is cut but a large CRL
//     read at a normal pace is not;
//   - gRPC: keepalive enforcement and server pings, MaxConcurrentStreams,
//     MaxRecvMsgSize (refused from the length prefix, before the message is
//     read), fixed HTTP/2 receive windows, a handshake timeout.
//
// Zero limits take the defaults documented on HTTPLimits and GRPCLimits.
package server
