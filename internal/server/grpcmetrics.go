package server

import (
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// grpcBuckets bound shomei_grpc_server_handling_seconds: issuance signs with
// the HSM (milliseconds), a streaming call (events, replication) lasts as
// long as its client stays.
var grpcBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// newGRPCMetrics are the gRPC server metrics of go-grpc-middleware's
// prometheus provider, named shomei_grpc_server_*: started, handled by
// grpc_code, handling seconds. Their labels are the service, method, type
// and status code only, never a request field. The collector is
// registered with reg (or the one already there, for a second Run on the
// same registry).
func newGRPCMetrics(reg prometheus.Registerer) (*grpcprom.ServerMetrics, error) {
	m := grpcprom.NewServerMetrics(
		grpcprom.WithServerCounterOptions(grpcprom.WithNamespace("shomei")),
		grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramNamespace("shomei"),
			grpcprom.WithHistogramBuckets(grpcBuckets)),
	)
	return register(reg, m)
}

// grpcMetricsOptions are the interceptors of m, outermost, so that calls the
// gate refuses are counted with their code too.
func grpcMetricsOptions(m *grpcprom.ServerMetrics) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.StreamServerInterceptor()),
	}
}
