package config

import (
	"strings"
	"testing"
	"time"
)

// TestServerLimits: server.grpc_limits and server.http_limits decode,
// strictly, and negative values are refused naming the key.
func TestServerLimits(t *testing.T) {
	c, err := Decode(strings.NewReader(valid+`server:
  http_limits:
    read_timeout: 3s
    max_connections: 500
    stop_grace: 1m
  grpc_limits:
    max_recv_msg_size: 32768
    max_concurrent_streams: 16
`), "/etc/shomei")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.HTTPLimits.ReadTimeout != 3*time.Second || c.Server.HTTPLimits.MaxConnections != 500 || c.Server.HTTPLimits.StopGrace != time.Minute ||
		c.Server.GRPCLimits.MaxRecvMsgSize != 32768 || c.Server.GRPCLimits.MaxConcurrentStreams != 16 {
		t.Errorf("limits: %+v %+v", c.Server.HTTPLimits, c.Server.GRPCLimits)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"server:\n  http_limits:\n    idle_timeout: -1s\n", "server.http_limits.idle_timeout"},
		{"server:\n  grpc_limits:\n    max_connections: -1\n", "server.grpc_limits"},
		{"server:\n  http_limits:\n    read_timout: 1s\n", "read_timout"},
		{"server:\n  http_limits:\n    stop_grace: -1s\n", "server.http_limits.stop_grace must not be negative"},
		{"server:\n  http_limits:\n    stop_grace: 61s\n", "server.http_limits.stop_grace 1m1s: at most 1m0s (0: 1s)"},
	} {
		if _, err := Decode(strings.NewReader(valid+tc.yaml), "/etc/shomei"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error naming %s", tc.yaml, err, tc.want)
		}
	}
	r, err := DecodeReplica(strings.NewReader("name: r1\nstore:\n  path: r.db\nhsm:\n  module: m.so\n  token_label: t\n  pin_env: PIN\nhttp_limits:\n  write_timeout: -1s\n"), "/x")
	if err == nil || !strings.Contains(err.Error(), "http_limits.write_timeout") {
		t.Errorf("replica http_limits.write_timeout -1s: %v %v", r, err)
	}
}
