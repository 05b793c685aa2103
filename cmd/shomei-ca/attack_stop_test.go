package main

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// TestAttackSlowHTTPClientsAtStop (issue 13: a graceful stop takes well
// under its timeout): anonymous callers hold the HTTP listener with
// requests that never finish (an OCSP POST whose body stops after 2 of
// its 1,000 bytes, a request whose headers stop half way, a /metrics
// response nobody reads) when the CA is told to stop. The status
// responses are milliseconds of work, so the stop waits for these callers
// only server.http_limits.stop_grace (1 s): the CA exits within 3 s of
// SIGTERM, not after its read timeout (10 s: it did, 9.5–10 s) or its
// shutdown timeout (30 s).
func TestAttackSlowHTTPClientsAtStop(t *testing.T) {
	const shutdownTimeout = 30 * time.Second
	dir := t.TempDir()
	p := startCA(t, writeConfig(t, dir, "e2e-attack-stop", fmt.Sprintf("  shutdown_timeout: %s\n", shutdownTimeout)))
	issueOne(t, p.client(t), "ATTACK-STOP-1")
	open := func(request string) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", p.http)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(1024) // and never read
		}
		if _, err := c.Write([]byte(request)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for range 4 {
		open("POST /ocsp HTTP/1.1\r\nHost: ca\r\nContent-Type: application/ocsp-request\r\nContent-Length: 1000\r\n\r\n0\x30")
		open("GET /metrics HTTP/1.1\r\nHost: ca\r\nX-Slow: ")
		open("GET /metrics HTTP/1.1\r\nHost: ca\r\n\r\n")
	}
	time.Sleep(500 * time.Millisecond) // the requests reach their handlers
	start := time.Now()
	p.stop(t)
	took := time.Since(start)
	t.Logf("SIGTERM to exit with 12 slow HTTP callers: %v (shutdown timeout %v)", took.Round(time.Millisecond), shutdownTimeout)
	if took > 3*time.Second {
		t.Errorf("the CA took %v to stop with slow HTTP callers connected, want under 3 s", took.Round(time.Millisecond))
	}
}

// TestAttackStalledGRPCCallsAtStop: anonymous gRPC callers open calls of
// the CA's unary methods and of Follow and never send the request message
// (gRPC reads it before any interceptor, so the gate never sees them), when
// the CA is told to stop. The graceful stop must not wait for them: the CA
// exits within 3 s of SIGTERM, not after its shutdown timeout (30 s).
func TestAttackStalledGRPCCallsAtStop(t *testing.T) {
	const shutdownTimeout = 30 * time.Second
	dir := t.TempDir()
	p := startCA(t, writeConfig(t, dir, "e2e-attack-stop-grpc", fmt.Sprintf("  shutdown_timeout: %s\n", shutdownTimeout)))
	conn, err := grpc.NewClient(p.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, method := range []string{cav1.CertificateAuthority_Issue_FullMethodName, cav1.Replication_Follow_FullMethodName} {
		for range 4 {
			if _, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, method); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A health Watch is a call that has sent its request and waits,
	// unauthenticated, for as long as its caller likes.
	for range 4 {
		w, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond) // the calls reach the server
	start := time.Now()
	p.stop(t)
	took := time.Since(start)
	t.Logf("SIGTERM to exit with 8 stalled gRPC calls and 4 health watches: %v (shutdown timeout %v)", took.Round(time.Millisecond), shutdownTimeout)
	if took > 3*time.Second {
		t.Errorf("the CA took %v to stop with stalled gRPC calls, want under 3 s", took.Round(time.Millisecond))
	}
}
