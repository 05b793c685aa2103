package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func TestFitToFileLimit(t *testing.T) {
	for _, tc := range []struct {
		name         string
		limit        uint64
		grpc, http   int // 0: listener not served
		wantG, wantH int
		wantLowered  bool
	}{
		{name: "room for both", limit: 1 << 20, grpc: 1024, http: 8192, wantG: 1024, wantH: 8192},
		{name: "HTTP lowered first", limit: 8192, grpc: 1024, http: 8192, wantG: 1024, wantH: 8192 - fileReserve - 1024, wantLowered: true},
		{name: "gRPC keeps at most half", limit: 2048, grpc: 4096, http: 8192, wantG: (2048 - fileReserve) / 2, wantH: 2048 - fileReserve - (2048-fileReserve)/2, wantLowered: true},
		{name: "HTTP only", limit: 4096, http: 8192, wantH: 4096 - fileReserve, wantLowered: true},
		{name: "tiny limit stays bounded", limit: 100, grpc: 1024, http: 8192, wantG: fileReserve / 2, wantH: fileReserve / 2, wantLowered: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g *GRPCLimits
			var h *HTTPLimits
			if tc.grpc > 0 {
				g = &GRPCLimits{MaxConnections: tc.grpc}
			}
			if tc.http > 0 {
				h = &HTTPLimits{MaxConnections: tc.http}
			}
			lowered := FitToFileLimit(tc.limit, g, h)
			if lowered != tc.wantLowered {
				t.Errorf("lowered = %v, want %v", lowered, tc.wantLowered)
			}
			if g != nil && g.MaxConnections != tc.wantG {
				t.Errorf("gRPC cap %d, want %d", g.MaxConnections, tc.wantG)
			}
			if h != nil && h.MaxConnections != tc.wantH {
				t.Errorf("HTTP cap %d, want %d", h.MaxConnections, tc.wantH)
			}
		})
	}
}

// serve runs Run in the background and returns the bound addresses.
func serve(t *testing.T, o Options) (grpcAddr, httpAddr net.Addr) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]net.Addr, 1)
	o.Ready = func(g, h net.Addr) { ready <- [2]net.Addr{g, h} }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case a := <-ready:
		return a[0], a[1]
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return nil, nil
}

// TestConnectionCap: at the cap, a new connection is closed before any
// HTTP work and counted; a place freed is usable again. The server runs
// HTTP only (the OCSP replica's case).
func TestConnectionCap(t *testing.T) {
	reg := prometheus.NewRegistry()
	g, h := serve(t, Options{
		HTTPListen: "127.0.0.1:0", Metrics: reg,
		HTTP:       http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		HTTPLimits: HTTPLimits{MaxConnections: 2},
	})
	if g != nil {
		t.Fatalf("gRPC listening at %v with no GRPCListen", g)
	}
	holdTwo(t, h, reg, "a connection over the cap", "after a place was freed")
}

// holdTwo holds two connections to the listener at h, which takes only
// two (from this address): the third, named third in the failure, is
// closed before it is served and counted as refused; once one of the two
// is closed, a request (named freed in the failure) is served again.
func holdTwo(t *testing.T, h net.Addr, reg *prometheus.Registry, third, freed string) {
	t.Helper()
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", h.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	for gathered(t, reg, "shomei_server_connections_open") != 2 {
		time.Sleep(10 * time.Millisecond)
	}
	// The connection over the cap is reset, during connect or at once
	// after it.
	if extra, err := net.Dial("tcp", h.String()); err == nil {
		defer extra.Close()
		io.WriteString(extra, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if n, err := extra.Read(make([]byte, 64)); err == nil || n > 0 {
			t.Fatalf("%s was served (%d bytes, %v)", third, n, err)
		}
	}
	if got := gathered(t, reg, "shomei_server_connections_refused_total"); got != 1 {
		t.Errorf("refused %v, want 1", got)
	}
	held[0].Close()
	for gathered(t, reg, "shomei_server_connections_open") != 1 {
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + h.String() + "/")
	if err != nil {
		t.Fatalf("%s: %v", freed, err)
	}
	resp.Body.Close()
}

// gathered is the value of the first sample of the counter or gauge
// name in reg; 0 when reg has none.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	m, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m {
		if f.GetName() == name {
			sample := f.GetMetric()[0]
			if c := sample.GetCounter(); c != nil {
				return c.GetValue()
			}
			return sample.GetGauge().GetValue()
		}
	}
	return 0
}

// TestGRPCMaxRecvMsgSize: a message over the limit is refused with
// ResourceExhausted before it reaches a handler.
func TestGRPCMaxRecvMsgSize(t *testing.T) {
	g, _ := serve(t, Options{GRPCListen: "127.0.0.1:0", GRPCLimits: GRPCLimits{MaxRecvMsgSize: 1 << 10}})
	conn, err := grpc.NewClient(g.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	if _, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("a small message: %v", err)
	}
	_, err = hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: strings.Repeat("x", 4<<10)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a 4 KiB message against a 1 KiB limit: %v, want ResourceExhausted", err)
	}
}

// TestSlowBodyCut: a request body that does not arrive within
// read_timeout ends the request; the handler sees a read error.
func TestSlowBodyCut(t *testing.T) {
	readErr := make(chan error, 1)
	_, h := serve(t, Options{
		HTTPListen: "127.0.0.1:0",
		HTTP: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			readErr <- err
		}),
		HTTPLimits: HTTPLimits{ReadTimeout: 200 * time.Millisecond},
	})
	c, err := net.Dial("tcp", h.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0")
	if err := <-readErr; err == nil {
		t.Fatal("a body that never arrives was read to its end")
	}
}

// TestLargeResponseProgresses: a response far larger than one write
// timeout covers (a large CRL) is delivered whole to a client that keeps
// reading, while a client that stops reading is cut.
func TestLargeResponseProgresses(t *testing.T) {
	body := bytes.Repeat([]byte("crl-entry-"), 6<<20) // 60 MB
	var mu sync.Mutex
	var writeErrs []error
	_, h := serve(t, Options{
		HTTPListen: "127.0.0.1:0",
		HTTP: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, err := w.Write(body)
			mu.Lock()
			writeErrs = append(writeErrs, err)
			mu.Unlock()
		}),
		HTTPLimits: HTTPLimits{WriteTimeout: time.Second},
	})
	resp, err := http.Get("http://" + h.String() + "/crl/big.crl")
	if err != nil {
		t.Fatal(err)
	}
	// Read 64 KiB at a time with pauses: the whole takes several write
	// timeouts, each chunk far less than one.
	buf := make([]byte, 64<<10)
	var got int
	for {
		n, err := io.ReadFull(resp.Body, buf)
		got += n
		if err != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp.Body.Close()
	if got != len(body) {
		t.Fatalf("read %d of %d bytes", got, len(body))
	}

	// A client that asks and never reads.
	c, err := net.Dial("tcp", h.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /crl/big.crl HTTP/1.1\r\nHost: x\r\n\r\n")
	for {
		mu.Lock()
		n := len(writeErrs)
		var last error
		if n == 2 {
			last = writeErrs[1]
		}
		mu.Unlock()
		if n == 2 {
			if ne, ok := errors.AsType[net.Error](last); !ok || !ne.Timeout() {
				t.Fatalf("writing to a client that does not read: %v, want a timeout", last)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGRPCHandshakeTimeout: a connection to the gRPC listener that never
// completes the HTTP/2 handshake is closed after connection_timeout.
func TestGRPCHandshakeTimeout(t *testing.T) {
	g, _ := serve(t, Options{GRPCListen: "127.0.0.1:0", GRPCLimits: GRPCLimits{ConnectionTimeout: 200 * time.Millisecond}})
	c, err := net.Dial("tcp", g.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server speaks first (its SETTINGS); read until it closes.
	if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("closed with %v", err)
	}
}

// TestConnectionCapPerAddress: with max_connections_per_address, one
// address cannot hold more than its share, though the listener has room.
func TestConnectionCapPerAddress(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, h := serve(t, Options{
		HTTPListen: "127.0.0.1:0", Metrics: reg,
		HTTP:       http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		HTTPLimits: HTTPLimits{MaxConnections: 100, MaxConnectionsPerAddress: 2},
	})
	holdTwo(t, h, reg, "a third connection from one address", "after the address freed a place")
}

// TestAttackHandlerOutlivesStop: a call still running when the graceful
// stop times out is cancelled, and Run returns only once its handler has
// ended, or says it has not (ErrHandlersRunning): shomei-ca seals its
// audit log when Run returns, and a handler writing after the seal (an
// Issue held by a slow HSM at a stop) stopped the next start as a forgery.
func TestAttackHandlerOutlivesStop(t *testing.T) {
	for _, ignoresCancel := range []bool{false, true} {
		started, cancelled, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
		var ended atomic.Bool
		slow := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			defer ended.Store(true)
			close(started)
			<-ctx.Done()
			close(cancelled)
			if ignoresCancel {
				<-release
			}
			return handler(ctx, req)
		}
		ctx, cancel := context.WithCancel(context.Background())
		addr := make(chan net.Addr, 1)
		runDone := make(chan struct{})
		var runErr error
		var endedAtReturn bool
		go func() {
			runErr = Run(ctx, Options{GRPCListen: "127.0.0.1:0", ShutdownTimeout: 50 * time.Millisecond,
				ServerOptions: []grpc.ServerOption{grpc.ChainUnaryInterceptor(slow)},
				Ready:         func(g, _ net.Addr) { addr <- g }, Log: slog.New(slog.DiscardHandler)})
			endedAtReturn = ended.Load()
			close(runDone)
		}()
		conn, err := grpc.NewClient((<-addr).String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		go healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		<-started
		cancel()
		<-cancelled
		<-runDone
		if !endedAtReturn && !errors.Is(runErr, ErrHandlersRunning) {
			t.Errorf("ignores cancel %v: Run returned %v with a handler still running", ignoresCancel, runErr)
		}
		if !ignoresCancel && (runErr != nil || !endedAtReturn) {
			t.Errorf("a handler that ends when cancelled: Run returned %v, handler ended %v", runErr, endedAtReturn)
		}
		close(release)
		conn.Close()
	}
}
