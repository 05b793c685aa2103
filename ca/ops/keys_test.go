package ops_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/caller"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/ops"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/open"
)

const keysToken = "ops-keys"

var ceremony struct {
	sync.Once
	keys []*storev1.IssuerKey
	err  error
}

// keysHarness is a CA after its key ceremony, with the Operations service
// served over gRPC on loopback. Every call comes in as the caller who.
type keysHarness struct {
	ca     *ca.CA
	client opsv1.OperationsClient
	clock  *testenv.Clock
}

func startKeys(t *testing.T, who caller.Caller) *keysHarness {
	t.Helper()
	ctx := context.Background()
	tok, st := open.Token(t, keysToken), open.Store(t)
	clock := testenv.NewClock(time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC))
	log := slog.New(slog.DiscardHandler)
	// One ceremony per token; each test records its keys in a store of
	// its own.
	ceremony.Do(func() {
		ceremony.keys, ceremony.err = (&issuer.Ceremony{Token: tok, Store: open.Store(t), Config: issuer.DefaultConfig(),
			Operator: "ops-test", Now: clock.Now, Log: log}).Run(ctx)
	})
	if ceremony.err != nil {
		t.Fatal(ceremony.err)
	}
	if err := st.InitIssuers(ceremony.keys, []*storev1.AuditRecord{{Actor: "ops-test", Action: "test.issuers.copy"}}); err != nil {
		t.Fatal(err)
	}
	authority, err := ca.New(ctx, ca.Config{Store: st, Token: tok, Now: clock.Now, Log: log,
		Profile: profile.Config{CPSURL: "https://shomei.example/cps"}, CRLBaseURL: "http://shomei.example/crl"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(authority.Close)
	keys, err := ops.NewKeys(ops.KeysConfig{CA: authority, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	approvals, err := ops.NewApprovals(ops.ApprovalsConfig{Store: st, CA: authority, Now: clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	records, err := ops.NewRecords(ops.RecordsConfig{Store: st, Token: tok, SpoolDir: t.TempDir(), Now: clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	server, err := ops.New(keys, approvals, records)
	if err != nil {
		t.Fatal(err)
	}
	// The gate of ca/service authenticates callers; here every call is who.
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(caller.With(ctx, who), req)
	}))
	opsv1.RegisterOperationsServer(srv, server)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &keysHarness{ca: authority, client: opsv1.NewOperationsClient(conn), clock: clock}
}

var operator = caller.Caller{Kind: caller.Operator, Name: "alice"}

// ListKeys shows every generation with its state, key, validity and
// certificate counts, a PENDING one with its activation time, and the
// R-V7 warning once the active issuer's life runs short.
func TestListKeys(t *testing.T) {
	h := startKeys(t, operator)
	ctx := context.Background()
	h.clock.Add(30 * 24 * time.Hour)
	if _, err := h.ca.Rotate(ctx, ca.ProfileSign, time.Time{}, ca.Approval{Proposer: "alice"}); err != nil {
		t.Fatal(err)
	}
	activateAt := h.clock.Now().Add(48 * time.Hour).Truncate(time.Second)
	if _, err := h.ca.Rotate(ctx, ca.ProfileAuth, activateAt, ca.Approval{Proposer: "alice"}); err != nil {
		t.Fatal(err)
	}
	resp, err := h.client.ListKeys(ctx, &opsv1.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range resp.Generations {
		got = append(got, g.Name+" "+strings.TrimPrefix(g.State.String(), "KEY_STATE_"))
		if g.KeyLabel != "shomei-"+g.Name || len(g.KeyId) != 32 || len(g.SubjectKeyId) != 40 || g.KeyAlgorithm != "rsa2048" || g.NotAfter == "" {
			t.Errorf("%s: label %q id %q ski %q algorithm %q not_after %q", g.Name, g.KeyLabel, g.KeyId, g.SubjectKeyId, g.KeyAlgorithm, g.NotAfter)
		}
		if g.Warning != "" {
			t.Errorf("%s warns %q ten years ahead", g.Name, g.Warning)
		}
	}
	if want := "sign-g1 SUPERSEDED,sign-g2 ACTIVE,auth-g1 ACTIVE,auth-g2 PENDING"; strings.Join(got, ",") != want {
		t.Errorf("generations %s, want %s", strings.Join(got, ","), want)
	}
	if a := resp.Generations[3].ActivateAt; a != activateAt.UTC().Format(time.RFC3339) {
		t.Errorf("auth-g2 activate_at %q, want %s", a, activateAt.UTC().Format(time.RFC3339))
	}

	// Nine years on, the active issuer's remaining life is short (R-V7).
	h.clock.Set(time.Date(2035, 12, 1, 1, 0, 0, 0, time.UTC))
	resp, err = h.client.ListKeys(ctx, &opsv1.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	warned := map[string]string{}
	for _, g := range resp.Generations {
		if g.Warning != "" {
			warned[g.Name] = g.Warning
		}
	}
	if len(warned) != 2 || !strings.Contains(warned["sign-g2"], "rotate before") || !strings.Contains(warned["auth-g1"], "R-V7") {
		t.Errorf("warnings %v, want one for each active generation (sign-g2, auth-g1)", warned)
	}
}

// ExportIssuers names each generation's certificate by its key label and
// the link certificates by which key certifies which.
func TestExportIssuers(t *testing.T) {
	h := startKeys(t, operator)
	ctx := context.Background()
	h.clock.Add(time.Hour)
	if _, err := h.ca.Rotate(ctx, ca.ProfileSign, time.Time{}, ca.Approval{Proposer: "alice"}); err != nil {
		t.Fatal(err)
	}
	resp, err := h.client.ExportIssuers(ctx, &opsv1.ExportIssuersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]*x509.Certificate{}
	var names []string
	for _, c := range resp.Certificates {
		cert, err := x509.ParseCertificate(c.CertificateDer)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		certs[c.Name] = cert
		names = append(names, c.Name)
	}
	want := "shomei-sign-g1,shomei-sign-g2,shomei-sign-g2-by-g1,shomei-sign-g1-by-g2,shomei-auth-g1"
	if strings.Join(names, ",") != want {
		t.Fatalf("exported %s, want %s", strings.Join(names, ","), want)
	}
	g1, g2 := certs["shomei-sign-g1"], certs["shomei-sign-g2"]
	if err := certs["shomei-sign-g2-by-g1"].CheckSignatureFrom(g1); err != nil || !bytes.Equal(certs["shomei-sign-g2-by-g1"].RawSubjectPublicKeyInfo, g2.RawSubjectPublicKeyInfo) {
		t.Errorf("shomei-sign-g2-by-g1 is not generation 2's key certified by generation 1's (%v)", err)
	}
	if err := certs["shomei-sign-g1-by-g2"].CheckSignatureFrom(g2); err != nil || !bytes.Equal(certs["shomei-sign-g1-by-g2"].RawSubjectPublicKeyInfo, g1.RawSubjectPublicKeyInfo) {
		t.Errorf("shomei-sign-g1-by-g2 is not generation 1's key certified by generation 2's (%v)", err)
	}
}

// Only operators: a municipal or replica caller is refused by the part
// itself too (the gate refuses them first in shomei-ca).
func TestKeysRefuseNonOperators(t *testing.T) {
	for _, who := range []caller.Caller{{Kind: caller.Municipal, Name: "kiyose"}, {Kind: caller.Replica, Name: "replica1"}} {
		h := startKeys(t, who)
		if _, err := h.client.ListKeys(context.Background(), &opsv1.ListKeysRequest{}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("ListKeys as %s: %v, want PermissionDenied", who, err)
		}
		if _, err := h.client.ExportIssuers(context.Background(), &opsv1.ExportIssuersRequest{}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("ExportIssuers as %s: %v, want PermissionDenied", who, err)
		}
	}
}
