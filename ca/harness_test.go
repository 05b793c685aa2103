package ca

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/validity"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv/open"
	"github.com/shomei-pki/shomei/internal/testenv/pg"
)

// The CA core's tests run it on what production gives it: a bbolt store in
// t.TempDir() and issuer keys in a SoftHSM2 token. One token and one key
// ceremony serve every test; each test records the ceremony's issuer keys
// in a store of its own, so the tests run in parallel, each with its own
// clock. A test wraps the store or a signer only to inject a fault.

const coreToken = "ca-core"

// ceremonyDay is when the issuers are made; their certificates are valid
// for ten years from 10:00 JST that day (until 2036-11-21).
const ceremonyDay = "2026-11-21"

// RFC 5280 CRLReason codes, as the rule book's table names them (R-R1).
const (
	reasonKeyCompromise        = 1
	reasonCACompromise         = 2
	reasonAffiliationChanged   = 3
	reasonSuperseded           = 4
	reasonCessationOfOperation = 5
)

// hsmEnv is the SoftHSM2 token and its ceremony's issuer keys, made on
// first use: the fuzz target of this package needs no token.
var hsmEnv struct {
	once    sync.Once
	err     error
	cleanup func()
	tok     *hsm.Token
	keys    []*storev1.IssuerKey
}

func TestMain(m *testing.M) {
	code := m.Run()
	if hsmEnv.tok != nil {
		hsmEnv.tok.Close()
	}
	if hsmEnv.cleanup != nil {
		hsmEnv.cleanup()
	}
	if err := pg.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// issuerToken returns the shared token and the issuer keys of its ceremony.
func issuerToken(t *testing.T) (*hsm.Token, []*storev1.IssuerKey) {
	t.Helper()
	hsmEnv.once.Do(func() { hsmEnv.err = ceremony() })
	if hsmEnv.err != nil {
		t.Fatalf("setting up the SoftHSM2 token: %v", hsmEnv.err)
	}
	return hsmEnv.tok, hsmEnv.keys
}

// ceremony makes the token and runs the key ceremony on it, with a store of
// its own that only keeps the records the tests copy.
func ceremony() error {
	dir, cleanup, err := softhsm.NewTestEnv(coreToken)
	hsmEnv.cleanup = cleanup
	if err != nil {
		return err
	}
	if hsmEnv.tok, err = open.TokenPool(coreToken, 0); err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(dir.Root, "ceremony.db"), store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	day, err := validity.ParseDate(ceremonyDay)
	if err != nil {
		return err
	}
	cer := issuer.Ceremony{Token: hsmEnv.tok, Store: st, Config: issuer.DefaultConfig(), Operator: "ca-test",
		Now: func() time.Time { return day.Start().Add(10 * time.Hour) }, Log: slog.New(slog.DiscardHandler)}
	hsmEnv.keys, err = cer.Run(context.Background())
	return err
}

// at is 10:00 JST of a YYYY-MM-DD date: a working day at the counter.
func at(t testing.TB, date string) time.Time {
	t.Helper()
	d, err := validity.ParseDate(date)
	if err != nil {
		t.Fatal(err)
	}
	return d.Start().Add(10 * time.Hour)
}

// testCA is a CA on a store of its own, its clock at 10:00 JST on
// ceremonyDay. Each test drives its CA from its own goroutine, and the CA
// starts none: the clock and the log need no lock.
type testCA struct {
	*CA
	store *store.Store
	clock time.Time // what the CA's Now returns
	logs  *bytes.Buffer
}

// logger writes to the CA's log buffer, every level.
func (c *testCA) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// readClock is the CA's Now.
func (c *testCA) readClock() time.Time { return c.clock }

type caOptions struct {
	// wrap, when set, puts a fault-injecting store between the CA and the
	// real one.
	wrap       func(*store.Store) Store
	responders ResponderPolicy
	// now, when set, is the CA's clock instead of testCA.clock: for a CA
	// whose activation timer reads it while the test moves it.
	now func() time.Time
	// onIssuersChanged is Config.OnIssuersChanged.
	onIssuersChanged func()
	// metrics, when set, gets the CA's metrics (NewMetrics).
	metrics prometheus.Registerer
}

func newTestCA(t *testing.T, opts caOptions) *testCA {
	t.Helper()
	tok, keys := issuerToken(t)
	st := open.Store(t) // PostgreSQL under SHOMEI_TEST_STORE=postgres
	tc := &testCA{store: st, clock: at(t, ceremonyDay), logs: &bytes.Buffer{}}
	if err := st.InitIssuers(keys, []*storev1.AuditRecord{auditOf(tc.clock, "test.issuers.copy")}); err != nil {
		t.Fatal(err)
	}
	var s Store = st
	if opts.wrap != nil {
		s = opts.wrap(st)
	}
	now := tc.readClock
	if opts.now != nil {
		now = opts.now
	}
	var metrics *Metrics
	if opts.metrics != nil {
		var err error
		if metrics, err = NewMetrics(opts.metrics); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	tc.CA, err = New(context.Background(), Config{
		Store: s, Token: tok, Profile: profileConfig(), CRLBaseURL: "http://shomei.example/crl",
		AllowECDSAP256: true, Actor: "ca-test", Now: now, Log: tc.logger(), Responders: opts.responders,
		OnIssuersChanged: opts.onIssuersChanged, Metrics: metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.CA.Close() })
	t.Cleanup(func() { tc.checkLog(t) })
	return tc
}

func profileConfig() profile.Config {
	return profile.Config{CPSURL: "https://shomei.example/cps", OCSPURL: "http://shomei.example/ocsp"}
}

func auditOf(now time.Time, action string) *storev1.AuditRecord {
	return &storev1.AuditRecord{Time: timestamppb.New(now), Actor: "ca-test", Action: action}
}

// checkLog fails if the CA logged a holder id or any personal data of the
// requests these tests send (R-P4).
func (c *testCA) checkLog(t *testing.T) {
	log := c.logs.String()
	for _, s := range []string{"holder-1", "holder-2", "山田", "花子", "髙橋", "高橋", "清瀬市中里", "1990-06-15", "19900615"} {
		if strings.Contains(log, s) {
			t.Errorf("the CA logged personal data %q (R-P4)", s)
		}
	}
}

// restart replaces the CA by a new one on the same store and HSM, as a new
// process would start.
func (c *testCA) restart(t *testing.T) {
	t.Helper()
	next, err := New(context.Background(), c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.CA = next
}

// setDate moves the CA's clock to 10:00 JST of date.
func (c *testCA) setDate(t *testing.T, date string) { c.clock = at(t, date) }

// holderCerts returns every record of a holder, whatever its state.
func (c *testCA) holderCerts(t *testing.T, holderID string) []*storev1.Certificate {
	t.Helper()
	recs, err := c.store.HolderCertificates("13221", holderID)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// cardKey is a fresh card key and its PKCS#10 request. ECDSA P-256 keys
// are accepted by these CAs (AllowECDSAP256) and cost nothing to make.
type cardKey struct {
	csr  []byte
	spki []byte // SHA-256 of its SubjectPublicKeyInfo
}

func newCardKey(t testing.TB) cardKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "card"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	return cardKey{csr: der, spki: sum[:]}
}

// request is an application by the holder, an adult born 1990-06-15, at
// the counter of Kiyose (13221), for the profiles asked, each with a fresh
// card key; the card expires on 2035-06-15.
func request(t testing.TB, profiles ...Profile) IssueRequest {
	t.Helper()
	req := IssueRequest{
		Municipality: Municipality{Code: "13221", PrefectureRomaji: "Tokyo-to", MunicipalityRomaji: "Kiyose-shi",
			Prefecture: "東京都", Name: "清瀬市"},
		Holder: Holder{ID: "holder-1", Surname: "山田", GivenName: "花子", DateOfBirth: "1990-06-15", Sex: SexFemale,
			Address: "東京都清瀬市中里五丁目８４２番地"},
		Application: Application{Kind: ApplicantSelf, CardExpiry: "2035-06-15"},
	}
	for _, p := range profiles {
		req.Profiles = append(req.Profiles, ProfileRequest{Profile: p, CSR: newCardKey(t).csr})
	}
	return req
}

// mustIssue issues or renews req on date; it must succeed.
func (c *testCA) mustIssue(t *testing.T, date string, renew bool, req IssueRequest) *Issued {
	t.Helper()
	c.setDate(t, date)
	do := c.Issue
	if renew {
		do = c.Renew
	}
	out, err := do(context.Background(), req)
	if err != nil {
		t.Fatalf("%s on %s: %v", map[bool]string{false: "issue", true: "renew"}[renew], date, err)
	}
	return out
}

// refusal is what a refused request must say: its kind (the gRPC code at
// the API: KindInvalid INVALID_ARGUMENT, KindPrecondition
// FAILED_PRECONDITION, KindNotFound NOT_FOUND, KindPermission
// PERMISSION_DENIED, KindConflict ALREADY_EXISTS, KindUnavailable
// UNAVAILABLE), and a violation naming the field and the rule.
type refusal struct {
	kind  Kind
	field string
	rule  string
	says  string // in that violation's description, when set
}

func (r refusal) String() string {
	return fmt.Sprintf("kind %d, %s (%s) %q", r.kind, r.field, r.rule, r.says)
}

// check fails unless err is the refusal, with its field and rule in the
// message the caller sees.
func (r refusal) check(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want a refusal: %s", err, r)
	}
	if e.Kind != r.kind {
		t.Errorf("kind %d, want %d (%v)", e.Kind, r.kind, err)
	}
	found := false
	for _, v := range e.Violations {
		if v.Field == r.field && v.Rule == r.rule && strings.Contains(v.Description, r.says) {
			found = true
		}
	}
	if !found {
		t.Errorf("no violation %s in %v", r, e.Violations)
	}
	if msg := err.Error(); !strings.Contains(msg, r.field) || !strings.Contains(msg, "("+r.rule+")") {
		t.Errorf("message %q does not name the field %s and the rule %s", msg, r.field, r.rule)
	}
}

// serialHex is a record's serial as the API takes it.
func serialHex(rec *storev1.Certificate) string { return SerialHex(rec.Serial) }
