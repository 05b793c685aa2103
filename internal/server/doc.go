// Package server runs Shomei's network listeners: a gRPC server with the
// standard health service and server reflection (so grpcurl works without
// proto files), and an HTTP server, until the context ends; then it stops
// both gracefully, letting requests in flight finish within a deadline.
package server
