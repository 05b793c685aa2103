package ops_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/ops"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/ca/service"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/validity"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/open"
)

// Tokens: the audit test keeps the HSM's witness of its own log, so it
// has a token of its own; the others share one (they read no witness).
const (
	tokenAudit   = "ops-audit"
	tokenRecords = "ops-records"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, "ops tests", []string{tokenAudit, tokenRecords, keysToken}, nil))
}

// ceremonyDay is when the issuers are made; the CA's clock starts at
// 10:00 JST that day.
const ceremonyDay = "2026-11-21"

// at is 10:00 JST of a YYYY-MM-DD date.
func at(t testing.TB, date string) time.Time {
	t.Helper()
	d, err := validity.ParseDate(date)
	if err != nil {
		t.Fatal(err)
	}
	return d.Start().Add(10 * time.Hour)
}

// ceremonies are each token's issuer keys: one ceremony a token, whose
// keys every test's new store records.
var ceremonies sync.Map // label → []*storev1.IssuerKey

// harness is a CA's store and HSM token, with the Operations service
// served over gRPC on loopback by the real gate (development mode: the
// caller names itself "alice" in ops.OperatorHeader).
type harness struct {
	ca    *ca.CA
	store *store.Store
	path  string
	tok   *hsm.Token
	clock *testenv.Clock
	log   *testenv.LogBuffer
	ops   opsv1.OperationsClient
	addr  string          // the gRPC server's
	ctx   context.Context // carries the operator's name
	stop  func()
}

func start(t *testing.T, label string) *harness {
	t.Helper()
	h := &harness{tok: open.Token(t, label), clock: testenv.NewClock(at(t, ceremonyDay)), log: &testenv.LogBuffer{},
		path: filepath.Join(t.TempDir(), "shomei.db")}
	var err error
	if h.store, err = store.Open(h.path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.store.Close() })
	log := slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	first := []*storev1.AuditRecord{{Time: timestamppb.New(h.clock.Now()), Actor: "ops-test", Action: "test.issuers.copy"}}
	if keys, ok := ceremonies.Load(label); ok {
		err = h.store.InitIssuers(keys.([]*storev1.IssuerKey), first)
	} else {
		cer := issuer.Ceremony{Token: h.tok, Store: h.store, Config: issuer.DefaultConfig(), Operator: "ops-test", Now: h.clock.Now, Log: log}
		var keys []*storev1.IssuerKey
		if keys, err = cer.Run(context.Background()); err == nil {
			ceremonies.Store(label, keys)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Key(context.Background(), h.tok, true, nil); err != nil {
		t.Fatal(err)
	}
	h.ca, err = ca.New(context.Background(), ca.Config{Store: h.store, Token: h.tok,
		Profile:    profile.Config{CPSURL: "https://shomei.example/cps", OCSPURL: "http://shomei.example/ocsp"},
		CRLBaseURL: "http://shomei.example/crl", AllowECDSAP256: true, Actor: "ops-test", Now: h.clock.Now, Log: log,
		Responders: ca.ResponderPolicy{EnrollAny: true}})
	if err != nil {
		t.Fatal(err)
	}
	h.serve(t)
	t.Cleanup(func() {
		for _, s := range []string{"holder-", "1990-"} {
			if strings.Contains(h.log.String(), s) {
				t.Errorf("the log holds personal data (%q):\n%s", s, h.log)
			}
		}
	})
	return h
}

// serve serves the Operations service on h's store and token.
func (h *harness) serve(t *testing.T) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	conn, addr, stop := serveOps(t, h, ops.RecordsConfig{Store: h.store, Token: h.tok, Now: h.clock.Now, Log: log}, log)
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			conn.Close()
			if err := stop(); err != nil {
				t.Errorf("gRPC server: %v", err)
			}
		})
	}
	t.Cleanup(h.stop)
	h.ops, h.addr = opsv1.NewOperationsClient(conn), addr
	h.ctx = metadata.AppendToOutgoingContext(context.Background(), ops.OperatorHeader, "alice")
}

// serveOps serves the Operations service on h's CA and store, with the
// records part built from rcfg, behind the real gate (development mode),
// and dials it. stop ends the server and returns what Serve returned.
func serveOps(t *testing.T, h *harness, rcfg ops.RecordsConfig, log *slog.Logger) (*grpc.ClientConn, string, func() error) {
	t.Helper()
	keys, err := ops.NewKeys(ops.KeysConfig{CA: h.ca, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	approvals, err := ops.NewApprovals(ops.ApprovalsConfig{Store: h.store, CA: h.ca, Now: h.clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if rcfg.SpoolDir == "" {
		rcfg.SpoolDir = t.TempDir()
	}
	records, err := ops.NewRecords(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ops.New(keys, approvals, records)
	if err != nil {
		t.Fatal(err)
	}
	gate, err := service.NewGate(service.GateConfig{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(gate.ServerOptions()...)
	opsv1.RegisterOperationsServer(g, srv)
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		g.Stop()
		t.Fatal(err)
	}
	return conn, lis.Addr().String(), func() error { g.Stop(); return <-served }
}

// setDate moves the CA's clock to 10:00 JST of date.
func (h *harness) setDate(t testing.TB, date string) { h.clock.Set(at(t, date)) }

// issue issues SIGN and AUTH to holder, born on birth, in municipality
// (13221 Kiyose or 13222 Higashikurume) at the CA's clock.
func (h *harness) issue(t *testing.T, municipality, holder, birth string) []*storev1.Certificate {
	t.Helper()
	m := ca.Municipality{Code: municipality, PrefectureRomaji: "Tokyo-to", MunicipalityRomaji: "Kiyose-shi", Prefecture: "東京都", Name: "清瀬市"}
	if municipality == "13222" {
		m.MunicipalityRomaji, m.Name = "Higashikurume-shi", "東久留米市"
	}
	req := ca.IssueRequest{Municipality: m,
		Holder: ca.Holder{ID: holder, Surname: "山田", GivenName: "花子", DateOfBirth: birth, Sex: ca.SexFemale,
			Address: "東京都清瀬市中里五丁目８４２番地"},
		Application: ca.Application{Kind: ca.ApplicantSelf, CardExpiry: "2035-06-15"}}
	for _, p := range []ca.Profile{ca.ProfileSign, ca.ProfileAuth} {
		req.Profiles = append(req.Profiles, ca.ProfileRequest{Profile: p, CSR: cardCSR(t)})
	}
	out, err := h.ca.Issue(context.Background(), req)
	if err != nil {
		t.Fatalf("issue to %s: %v", holder, err)
	}
	return out.Certificates
}

// cardCSR is a fresh P-256 card key's request.
func cardCSR(t testing.TB) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "card"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
