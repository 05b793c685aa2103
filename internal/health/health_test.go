package health

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestReadiness: a check's result is kept for its interval (a flood of
// probes costs one HSM look-up per interval, not one each), /readyz says
// 503 with the reason when a check fails and 200 with notes when one is
// degraded, and Follow moves the gRPC status with it.
func TestReadiness(t *testing.T) {
	var clock atomic.Int64 // seconds after start
	start := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return start.Add(time.Duration(clock.Load()) * time.Second) }
	var hsmCalls atomic.Int32
	var hsmErr, crlNote atomic.Value
	hsmErr.Store(errors.New(""))
	crlNote.Store("")
	c, err := New(Config{Now: now, Checks: []Check{
		{Name: "hsm", Every: 5 * time.Second, Probe: func(context.Context) Result {
			hsmCalls.Add(1)
			if e := hsmErr.Load().(error); e.Error() != "" {
				return Result{Err: e}
			}
			return Result{}
		}},
		{Name: "crl", Probe: func(context.Context) Result { return Result{Degraded: crlNote.Load().(string)} }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	for range 1000 {
		if code, body := get(); code != http.StatusOK || body != "ready\nhsm: ok\ncrl: ok\n" {
			t.Fatalf("/readyz: %d %q", code, body)
		}
	}
	if n := hsmCalls.Load(); n != 1 {
		t.Errorf("1000 probes within 5 s checked the HSM %d times, want once", n)
	}

	hsmErr.Store(errors.New("issuer shomei-sign-g1: key gone"))
	crlNote.Store("partition sign-g1-13221: 1 revoked certificate(s) left off")
	if code, body := get(); code != http.StatusOK || !strings.Contains(body, "crl: degraded: partition sign-g1-13221") {
		t.Errorf("before the HSM result expires: %d %q; want the kept result, and the CRL note", code, body)
	}
	clock.Add(5)
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "hsm: not ready: issuer shomei-sign-g1: key gone") {
		t.Errorf("with the HSM failing: %d %q", code, body)
	}

	hs := grpchealth.NewServer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Follow(ctx, hs, []string{"svc"}, time.Millisecond); close(done) }()
	wait := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			resp, err := hs.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "svc"})
			if err == nil && resp.Status == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("gRPC health of svc: %v %v, want %v", resp, err, want)
			}
		}
	}
	wait(healthpb.HealthCheckResponse_NOT_SERVING)
	hsmErr.Store(errors.New(""))
	clock.Add(5)
	wait(healthpb.HealthCheckResponse_SERVING)
	cancel()
	<-done
}

// TestAttackReadinessCallerLeaves: a caller of /readyz that closes its
// connection at once (its request context ends) made the HSM probe fail
// with the caller's cancellation, and that failure was kept for the
// probe's interval: anyone could take the CA out of its load balancer, and
// its gRPC health to NOT_SERVING, one request every 5 s. And every
// concurrent caller finding the result expired ran a probe of its own.
func TestAttackReadinessCallerLeaves(t *testing.T) {
	start := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	var calls atomic.Int32
	release := make(chan struct{})
	c, err := New(Config{Now: func() time.Time { return start }, Checks: []Check{
		{Name: "hsm", Every: 5 * time.Second, Probe: func(ctx context.Context) Result {
			calls.Add(1)
			select {
			case <-release:
				return Result{}
			case <-ctx.Done():
				return Result{Err: ctx.Err()}
			}
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(ctx context.Context) (int, string) {
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx))
		return rec.Code, rec.Body.String()
	}
	left, cancel := context.WithCancel(context.Background())
	cancel()
	if code, _ := get(left); code != http.StatusServiceUnavailable {
		t.Errorf("a caller that left: %d, want 503 (it gets no verdict)", code)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if code, body := get(context.Background()); code != http.StatusOK {
				t.Errorf("a caller waiting for the probe: %d %q", code, body)
			}
		})
	}
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if code, body := get(context.Background()); code != http.StatusOK {
		t.Errorf("after a caller left: %d %q, want ready", code, body)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("11 callers ran the probe %d times, want once", n)
	}
}
