package service

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/shomei-pki/shomei/ca/caller"
	"github.com/shomei-pki/shomei/internal/ratelimit"
)

// TestGateTap: the tap handle decides from the headers alone, and the
// interceptors fail closed when a server lacks it.
func TestGateTap(t *testing.T) {
	auth, err := NewTokenAuthorizer([]Client{
		{Name: "kiyose", Token: "kiyose-token-0123456789", Municipalities: []string{"13221"}},
		{Name: "replica1", Token: "replica-token-0123456789", Replica: true},
		{Name: "kurume", Token: "kurume-token-0123456789", Municipalities: []string{"13222"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dup := range [][]Client{
		{{Name: "a", Token: "same-token-0123456789", Municipalities: []string{"13221"}}, {Name: "b", Token: "same-token-0123456789", Municipalities: []string{"13222"}}},
		{{Name: "a", Token: "a-token-0123456789", Municipalities: []string{"13221"}}, {Name: "a", Token: "b-token-0123456789", Municipalities: []string{"13222"}}},
	} {
		if _, err := NewTokenAuthorizer(dup); err == nil {
			t.Errorf("NewTokenAuthorizer accepted %+v", dup)
		}
	}
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	g, err := NewGate(GateConfig{Clients: auth, FailureLimit: ratelimit.Limit{Rate: 1, Burst: 2}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	from := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4000}})
	call := func(method, token string) (context.Context, error) {
		md := metadata.MD{}
		if token != "" {
			md.Set("authorization", "Bearer "+token)
		}
		return g.tap(from, &tap.Info{FullMethodName: method, Header: md})
	}
	const issue = "/shomei.ca.v1.CertificateAuthority/Issue"

	ctx, err := call(issue, "kiyose-token-0123456789")
	if c, ok := caller.From(ctx); err != nil || !ok || c.String() != "municipal:kiyose" || c.Via != "token" {
		t.Fatalf("kiyose: %v, %+v", err, c)
	}
	ctx, err = call("/shomei.ca.v1.Replication/Follow", "replica-token-0123456789")
	if c, _ := caller.From(ctx); err != nil || c.String() != "replica:replica1" {
		t.Fatalf("replica: %v, %+v", err, c)
	}
	if _, err := call("/grpc.health.v1.Health/Check", ""); err != nil {
		t.Errorf("health without a token: %v", err)
	}
	for _, token := range []string{"", "wrong-token-0123456789"} {
		if _, err := call(issue, token); status.Code(err) != codes.Unauthenticated {
			t.Errorf("token %q: %v, want Unauthenticated", token, err)
		}
	}
	// Two failures used the address's burst: a guess now gets the same
	// answer right or wrong, while kiyose, seen from this address before,
	// goes on.
	for _, token := range []string{"kurume-token-0123456789", "wrong-token-0123456789"} {
		if _, err := call(issue, token); status.Code(err) != codes.ResourceExhausted {
			t.Errorf("token %q after the failure burst: %v, want ResourceExhausted", token, err)
		}
	}
	if _, err := call(issue, "kiyose-token-0123456789"); err != nil {
		t.Errorf("kiyose after the failure burst: %v", err)
	}
	now = now.Add(time.Second)
	if _, err := call(issue, "kurume-token-0123456789"); err != nil {
		t.Errorf("after a second: %v", err)
	}

	// Without the tap handle, nothing but public methods gets through.
	handler := func(context.Context, any) (any, error) { return "done", nil }
	if _, err := g.unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: issue}, handler); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no caller: %v, want Unauthenticated", err)
	}
	if out, err := g.unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/grpc.health.v1.Health/Check"}, handler); err != nil || out != "done" {
		t.Errorf("health: %v, %v", out, err)
	}

	// Development mode: a local caller, no credentials.
	dev, err := NewGate(GateConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, err = dev.tap(from, &tap.Info{FullMethodName: issue, Header: metadata.MD{}})
	if c, ok := caller.From(ctx); err != nil || !ok || c.Kind != caller.Local {
		t.Errorf("development mode: %v, %+v", err, c)
	}
}
