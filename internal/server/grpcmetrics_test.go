package server

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/shomei-pki/shomei/internal/metricstest"
)

// TestGRPCMetrics: with Metrics set, every registered method has its
// shomei_grpc_server_* series from the start, and a call is counted as
// started and handled, by code, and timed; a second Run on the same
// registry reuses the collector.
func TestGRPCMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	g, _ := serve(t, Options{GRPCListen: "127.0.0.1:0", Metrics: reg})
	series := func() map[string]float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.Metric {
				labels := map[string]string{}
				for _, lp := range m.Label {
					labels[lp.GetName()] = lp.GetValue()
				}
				if labels["grpc_method"] != "Check" {
					continue
				}
				out[fmt.Sprintf("%s{%s}", mf.GetName(), labels["grpc_code"])] = metricstest.Value(m)
			}
		}
		return out
	}
	before := series()
	if v, ok := before["shomei_grpc_server_started_total{}"]; !ok || v != 0 {
		t.Fatalf("health Check before any call: started %v (present %v), want 0", v, ok)
	}
	conn, err := grpc.NewClient(g.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "no.such.Service"}); err == nil {
		t.Fatal("health Check of an unknown service succeeded")
	}
	after := series()
	for key, want := range map[string]float64{
		"shomei_grpc_server_started_total{}":         2,
		"shomei_grpc_server_handled_total{OK}":       1,
		"shomei_grpc_server_handled_total{NotFound}": 1,
		"shomei_grpc_server_handling_seconds{}":      2,
	} {
		if after[key] != want {
			t.Errorf("%s = %v, want %v (all: %v)", key, after[key], want, after)
		}
	}
	// A second server on the same registry (as in tests) is not refused.
	serve(t, Options{GRPCListen: "127.0.0.1:0", Metrics: reg})
}

// TestAttackGRPCMetricsUnknownMethods: a caller who calls methods and
// services of its own naming (any string is a gRPC method name on the
// wire) gets Unimplemented and adds no series: the label values of
// shomei_grpc_server_* stay the registered methods, so a caller cannot grow
// /metrics.
func TestAttackGRPCMetricsUnknownMethods(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	g, _ := serve(t, Options{GRPCListen: "127.0.0.1:0", Metrics: reg})
	count := func() (n int) {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.Metric {
				for _, lp := range m.Label {
					if lp.GetName() == "grpc_service" && lp.GetValue() != healthpb.Health_ServiceDesc.ServiceName &&
						lp.GetValue() != "grpc.reflection.v1.ServerReflection" && lp.GetValue() != "grpc.reflection.v1alpha.ServerReflection" {
						t.Errorf("%s: series of service %q", mf.GetName(), lp.GetValue())
					}
				}
				n++
			}
		}
		return n
	}
	before := count()
	conn, err := grpc.NewClient(g.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 50 {
		for _, method := range []string{fmt.Sprintf("/attacker.Chosen%d/Method", i), fmt.Sprintf("/grpc.health.v1.Health/Chosen%d", i)} {
			err := conn.Invoke(context.Background(), method, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
			if status.Code(err) != codes.Unimplemented {
				t.Fatalf("%s: %v, want Unimplemented", method, err)
			}
		}
	}
	if after := count(); after != before {
		t.Errorf("100 calls of unknown methods: %d series, were %d", after, before)
	}
}
