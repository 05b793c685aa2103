package service_test

import (
	"cmp"
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/ca/service"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/open"
)

// jst is Japan time: every date of the rules is a Japan date.
var jst = time.FixedZone("JST", 9*60*60)

// ceremonyDay is when every test's issuers are made; their certificates
// are valid for ten years from 10:00 JST that day (2036-11-21T01:00:00Z).
const ceremonyDay = "2026-11-21"

// at is 10:00 JST of a YYYY-MM-DD date, the CA's time on a working day.
func at(t testing.TB, date string) time.Time {
	t.Helper()
	d, err := time.ParseInLocation(time.DateOnly, date, jst)
	if err != nil {
		t.Fatal(err)
	}
	return d.Add(10 * time.Hour)
}

// endOfDay is a certificate's notAfter for an expiry date: 23:59:59 JST,
// that is 14:59:59Z (R-P1).
func endOfDay(t testing.TB, date string) time.Time {
	t.Helper()
	d, err := time.ParseInLocation(time.DateOnly, date, jst)
	if err != nil {
		t.Fatal(err)
	}
	return d.Add(24*time.Hour - time.Second).UTC()
}

// harness is one CA, as shomei-ca wires it, served over gRPC on loopback.
type harness struct {
	client      cav1.CertificateAuthorityClient
	events      cav1.EventsClient
	replication cav1.ReplicationClient
	addr        string // the gRPC server's address
	ca          *ca.CA
	store       *store.Store
	clock       *testenv.Clock
	issuers     map[cav1.Profile]*x509.Certificate
	log         *testenv.LogBuffer // the CA's log, checked for personal data (R-P4)

	mu sync.Mutex
	// personal is every holder id, name, address and date of birth the test
	// sent: none may reach the log (R-P4).
	personal map[string]bool
	// inquiries opened, to check that refusals leave them unused.
	inquiries []string
}

// ceremonies are the issuer keys each token got from its ceremony. The
// ceremony refuses a token that holds issuer keys, so a test that runs
// again in the same process (go test -count=2) records the first run's keys
// in its new store instead.
var ceremonies sync.Map // token label → []*storev1.IssuerKey

type options struct {
	allowP256 bool
	// crlBaseURL replaces the CA's CRL base URL when set.
	crlBaseURL string
	// maxRecv is the server's grpc.MaxRecvMsgSize when set (shomei-ca's
	// is ca.MaxRequestBytes).
	maxRecv int
	// auth admits callers; service.Open{} when nil, and then any replica
	// key is certified (responders.EnrollAny).
	auth interface {
		service.Authorizer
		service.ReplicaAuthorizer
	}
	responders ca.ResponderPolicy
	// crlShardSize is ca.Config.CRLShardSize (0: the default).
	crlShardSize int
	// stopping is the Replication service's Stopping.
	stopping <-chan struct{}
	// heartbeat is the Replication service's Heartbeat (0: its default).
	heartbeat time.Duration
}

// start runs the key ceremony on token (one of tokens) and a new store in
// t.TempDir(), starts a CA on them with its clock at 10:00 JST on
// ceremonyDay, and serves it over gRPC on 127.0.0.1.
func start(t *testing.T, token string, opts options) *harness {
	t.Helper()
	if !slices.Contains(tokens, token) {
		t.Fatalf("token %q is not made in TestMain", token)
	}
	ctx := context.Background()
	tok := open.Token(t, token)
	st := open.Store(t)

	if opts.auth == nil {
		opts.auth, opts.responders.EnrollAny = service.Open{}, true
	}
	h := &harness{store: st, clock: testenv.NewClock(at(t, ceremonyDay)), issuers: map[cav1.Profile]*x509.Certificate{},
		log: &testenv.LogBuffer{}, personal: map[string]bool{}}
	log := slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var keys []*storev1.IssuerKey
	var err error
	if earlier, ok := ceremonies.Load(token); ok {
		keys = earlier.([]*storev1.IssuerKey)
		err = st.InitIssuers(keys, []*storev1.AuditRecord{{Time: timestamppb.New(h.clock.Now()), Actor: "service-test",
			Action: "test.issuers.reuse", Fields: []*storev1.AuditField{{Key: "token", Value: token}}}})
	} else {
		cer := issuer.Ceremony{Token: tok, Store: st, Config: issuer.DefaultConfig(), Operator: "service-test",
			Now: h.clock.Now, Log: log}
		if keys, err = cer.Run(ctx); err == nil {
			ceremonies.Store(token, keys)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		cert, err := x509.ParseCertificate(k.CertificateDer)
		if err != nil {
			t.Fatal(err)
		}
		h.issuers[cav1.Profile(k.Profile)] = cert
	}

	authority, err := ca.New(ctx, ca.Config{
		Store: st, Token: tok,
		Profile:    profile.Config{CPSURL: "https://shomei.example/cps", OCSPURL: "http://shomei.example/ocsp"},
		CRLBaseURL: cmp.Or(opts.crlBaseURL, "http://shomei.example/crl"), CRLShardSize: opts.crlShardSize, AllowECDSAP256: opts.allowP256,
		Actor: "service-test", Now: h.clock.Now, Log: log, Responders: opts.responders,
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(authority, opts.auth, log)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Small pages, so that tests see a snapshot in several messages.
	repl, err := service.NewReplication(service.ReplicationConfig{CA: authority, Store: st, Auth: opts.auth,
		Batch: 2, Poll: 20 * time.Millisecond, Heartbeat: opts.heartbeat, Now: h.clock.Now, Log: log, Stopping: opts.stopping})
	if err != nil {
		t.Fatal(err)
	}
	var sopts []grpc.ServerOption
	if opts.maxRecv > 0 {
		sopts = append(sopts, grpc.MaxRecvMsgSize(opts.maxRecv))
	}
	srv := grpc.NewServer(sopts...)
	cav1.RegisterCertificateAuthorityServer(srv, svc)
	cav1.RegisterEventsServer(srv, svc.Events())
	cav1.RegisterReplicationServer(srv, repl)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("gRPC server: %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.client = cav1.NewCertificateAuthorityClient(conn)
	h.events = cav1.NewEventsClient(conn)
	h.replication = cav1.NewReplicationClient(conn)
	h.addr, h.ca = lis.Addr().String(), authority

	// Registered last, so it runs first, while the test's state is there.
	t.Cleanup(func() { h.checkLog(t) })
	return h
}

// setDate moves the CA's clock to 10:00 JST of date.
func (h *harness) setDate(t testing.TB, date string) { h.clock.Set(at(t, date)) }

// checkLog fails if the CA logged any holder's personal data or holder id
// (R-P4).
func (h *harness) checkLog(t *testing.T) {
	log := h.log.String()
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.personal {
		if strings.Contains(log, s) {
			t.Errorf("the CA's log contains %q, which a request sent as personal data or holder id (R-P4)", s)
		}
	}
}

// remember records the personal data of a request.
func (h *harness) remember(hol *cav1.Holder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range []string{hol.GetHolderId(), hol.GetSurname(), hol.GetGivenName(), hol.GetAddress(), hol.GetDateOfBirth()} {
		if s != "" {
			h.personal[s] = true
		}
	}
}

// Look-ups.

func (h *harness) get(t *testing.T, serial string) *cav1.Certificate {
	t.Helper()
	resp, err := h.client.GetCertificate(context.Background(), &cav1.GetCertificateRequest{Serial: serial})
	if err != nil {
		t.Fatalf("GetCertificate %s: %s", serial, describe(err))
	}
	return resp.Certificate
}

func (h *harness) list(t *testing.T, holderID string) []*cav1.Certificate {
	t.Helper()
	resp, err := h.client.ListCertificates(context.Background(),
		&cav1.ListCertificatesRequest{MunicipalityCode: kiyose.Code, HolderId: holderID})
	if err != nil {
		t.Fatalf("ListCertificates %s: %s", holderID, describe(err))
	}
	return resp.Certificates
}

// openInquiry opens an inquiry for a PROXY application (R-A2).
func (h *harness) openInquiry(t *testing.T, holderID string) *cav1.OpenInquiryResponse {
	t.Helper()
	resp, err := h.client.OpenInquiry(context.Background(), &cav1.OpenInquiryRequest{MunicipalityCode: kiyose.Code, HolderId: holderID})
	if err != nil {
		t.Fatalf("OpenInquiry: %s", describe(err))
	}
	h.mu.Lock()
	h.inquiries = append(h.inquiries, resp.InquiryId)
	h.personal[holderID] = true
	h.mu.Unlock()
	return resp
}
