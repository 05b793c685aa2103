package service_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/ca/service"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/softhsm"
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

// clock is the CA's injected clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(now time.Time) {
	c.mu.Lock()
	c.now = now
	c.mu.Unlock()
}

// logBuffer collects a CA's log, to check it for personal data (R-P4).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is one CA, as shomei-ca wires it, served over gRPC on loopback.
type harness struct {
	client      cav1.CertificateAuthorityClient
	events      cav1.EventsClient
	replication cav1.ReplicationClient
	addr        string // the gRPC server's address
	ca          *ca.CA
	store       *store.Store
	clock       *clock
	issuers     map[cav1.Profile]*x509.Certificate
	log         *logBuffer

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
	mod, err := softhsm.Module()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := hsm.Open(hsm.Config{Module: mod, TokenLabel: token, PIN: softhsm.TestPIN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	st, err := store.Open(filepath.Join(t.TempDir(), "shomei.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	if opts.auth == nil {
		opts.auth, opts.responders.EnrollAny = service.Open{}, true
	}
	h := &harness{store: st, clock: &clock{now: at(t, ceremonyDay)}, issuers: map[cav1.Profile]*x509.Certificate{},
		log: &logBuffer{}, personal: map[string]bool{}}
	log := slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var keys []*storev1.IssuerKey
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
		CRLBaseURL: cmp.Or(opts.crlBaseURL, "http://shomei.example/crl"), AllowECDSAP256: opts.allowP256,
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
		Batch: 2, Poll: 20 * time.Millisecond, Now: h.clock.Now, Log: log})
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
func (h *harness) setDate(t testing.TB, date string) { h.clock.set(at(t, date)) }

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

// Requests.

// kiyose is the issuing municipality of every request.
var kiyose = &cav1.Municipality{Code: "13221", PrefectureRomaji: "Tokyo-to", MunicipalityRomaji: "Kiyose-shi",
	Prefecture: "東京都", Municipality: "清瀬市"}

// defaultAddress is every resident's address unless a test says otherwise.
const defaultAddress = "東京都清瀬市中里五丁目１２番地"

// resident is a holder with a name and address that need no substitute.
func resident(id, dateOfBirth string) *cav1.Holder {
	return &cav1.Holder{HolderId: id, Surname: "山田", GivenName: "太郎", DateOfBirth: dateOfBirth,
		Sex: cav1.Sex_SEX_MALE, Address: defaultAddress}
}

// adultWard is resident recorded as an adult ward.
func adultWard(id, dateOfBirth string) *cav1.Holder {
	h := resident(id, dateOfBirth)
	h.AdultWard = true
	return h
}

// named is resident with another name.
func named(id, dateOfBirth, surname, givenName string) *cav1.Holder {
	h := resident(id, dateOfBirth)
	h.Surname, h.GivenName = surname, givenName
	return h
}

const (
	self  = cav1.ApplicantKind_APPLICANT_KIND_SELF
	legal = cav1.ApplicantKind_APPLICANT_KIND_LEGAL_REPRESENTATIVE
	proxy = cav1.ApplicantKind_APPLICANT_KIND_PROXY

	signProfile = cav1.Profile_PROFILE_SIGN
	authProfile = cav1.Profile_PROFILE_AUTH
)

func sign(csr []byte) *cav1.ProfileRequest {
	return &cav1.ProfileRequest{Profile: signProfile, Csr: csr}
}

func auth(csr []byte) *cav1.ProfileRequest {
	return &cav1.ProfileRequest{Profile: authProfile, Csr: csr}
}

func application(kind cav1.ApplicantKind, cardExpiry string) *cav1.Application {
	return &cav1.Application{ApplicantKind: kind, CardExpiry: cardExpiry}
}

func request(hol *cav1.Holder, app *cav1.Application, profiles ...*cav1.ProfileRequest) *cav1.IssueRequest {
	return &cav1.IssueRequest{Municipality: kiyose, Holder: hol, Application: app, Profiles: profiles}
}

func renewal(r *cav1.IssueRequest) *cav1.RenewRequest {
	return &cav1.RenewRequest{Municipality: r.Municipality, Holder: r.Holder, Application: r.Application, Profiles: r.Profiles,
		NameSubstitutions: r.NameSubstitutions, AddressSubstitutions: r.AddressSubstitutions}
}

// Steps.

// violation is a google.rpc.BadRequest field violation a refusal must carry:
// the request field, the rule id (its Reason) and, optionally, texts its
// description must contain.
type violation struct {
	field, rule string
	says        []string
}

// step is one call of a rule test: an Issue or a Renew on a date, and what
// must come of it.
type step struct {
	name  string
	date  string // YYYY-MM-DD: the CA's clock moves to 10:00 JST that day; "" leaves it
	renew bool
	req   *cav1.IssueRequest
	// code is the refusal's gRPC code; codes.OK when the certificates are
	// issued.
	code codes.Code
	// want are exactly the violations of a refusal.
	want []violation
	// expiry are the issued certificates' expiry dates, in request order.
	expiry []string
	// check looks further at what was issued.
	check func(t *testing.T, out issued)
}

// issued is the outcome of a granted Issue or Renew.
type issued struct {
	certs      []*cav1.Certificate
	x509       []*x509.Certificate
	superseded []string
}

// run runs steps in order, each as a subtest. Later steps build on earlier
// ones, so it stops at the first that fails.
func (h *harness) run(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			if s.date != "" {
				h.setDate(t, s.date)
			}
			if s.code != codes.OK {
				h.refused(t, s.code, s.want, func() error {
					_, err := h.call(s.renew, s.req)
					return err
				}, s.req)
				return
			}
			out := h.grant(t, s.renew, s.req)
			if s.expiry != nil {
				var got []string
				for _, c := range out.certs {
					got = append(got, c.ExpiryDate)
				}
				if !slices.Equal(got, s.expiry) {
					t.Errorf("expiry dates %v, want %v", got, s.expiry)
				}
			}
			if s.check != nil {
				s.check(t, out)
			}
		})
		if !ok {
			return
		}
	}
}

// call makes one Issue or Renew call.
func (h *harness) call(renew bool, req *cav1.IssueRequest) (issued, error) {
	h.remember(req.GetHolder())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if renew {
		resp, err := h.client.Renew(ctx, renewal(req))
		return issued{certs: resp.GetCertificates(), superseded: resp.GetSupersededSerials()}, err
	}
	resp, err := h.client.Issue(ctx, req)
	return issued{certs: resp.GetCertificates()}, err
}

// issue issues req and checks what comes back.
func (h *harness) issue(t *testing.T, req *cav1.IssueRequest) issued {
	t.Helper()
	return h.grant(t, false, req)
}

// grant makes an Issue or Renew call that must succeed, and checks every
// certificate issued: one per requested profile, in order, for the
// requested key, valid now, with notBefore now and notAfter 23:59:59 JST of
// its expiry date (R-P1), verifying with Go's x509.Verify against its
// issuer, and with the profile's content (R-P2, R-P3).
func (h *harness) grant(t *testing.T, renew bool, req *cav1.IssueRequest) issued {
	t.Helper()
	out, err := h.call(renew, req)
	if err != nil {
		t.Fatalf("refused: %v", describe(err))
	}
	if len(out.certs) != len(req.Profiles) {
		t.Fatalf("%d certificates for %d profiles", len(out.certs), len(req.Profiles))
	}
	now := h.clock.Now()
	for i, c := range out.certs {
		p := req.Profiles[i]
		holderKeys.certified(t, p.Csr)
		cert := h.checkCertificate(t, c, now)
		out.x509 = append(out.x509, cert)
		if c.Profile != p.Profile {
			t.Errorf("certificate %d is %v, want %v (request order)", i, c.Profile, p.Profile)
		}
		if c.HolderId != req.Holder.HolderId || c.MunicipalityCode != req.Municipality.Code {
			t.Errorf("certificate %d is for %s/%s", i, c.MunicipalityCode, c.HolderId)
		}
		if csr, err := x509.ParseCertificateRequest(p.Csr); err != nil || !bytes.Equal(cert.RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo) {
			t.Errorf("certificate %d does not certify the requested key", i)
		}
		if !cert.NotBefore.Equal(now.Truncate(time.Second)) {
			t.Errorf("certificate %d notBefore %v, want the issuance time %v (R-P1)", i, cert.NotBefore, now)
		}
		switch c.Profile {
		case signProfile:
			h.checkSign(t, cert, req)
		case authProfile:
			checkAuth(t, cert, req.Holder)
		}
	}
	return out
}

// checkCertificate checks one certificate of a response and returns it
// parsed.
func (h *harness) checkCertificate(t *testing.T, c *cav1.Certificate, now time.Time) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(c.Der)
	if err != nil {
		t.Fatalf("certificate %s does not parse: %v", c.Serial, err)
	}
	if block, _ := pem.Decode([]byte(c.Pem)); block == nil || block.Type != "CERTIFICATE" || !bytes.Equal(block.Bytes, c.Der) {
		t.Errorf("certificate %s: PEM is not its DER", c.Serial)
	}
	if c.Status != cav1.Status_STATUS_VALID {
		t.Errorf("certificate %s is %v, want VALID", c.Serial, c.Status)
	}
	if cert.SerialNumber.Sign() <= 0 || len(cert.SerialNumber.Bytes()) > 20 || cert.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %x is not a positive number of 64 bits to 20 octets (R-P1)", cert.SerialNumber)
	}
	if c.Serial != cert.SerialNumber.Text(16) {
		t.Errorf("serial %s, the certificate has %s", c.Serial, cert.SerialNumber.Text(16))
	}
	want := endOfDay(t, c.ExpiryDate)
	if !cert.NotAfter.Equal(want) || c.NotAfter != want.Format(time.RFC3339) {
		t.Errorf("certificate %s expires %s: notAfter %v (response %s), want %v (R-P1)", c.Serial, c.ExpiryDate, cert.NotAfter, c.NotAfter, want)
	}
	if c.IssuerGeneration != 1 {
		t.Errorf("certificate %s: issuer generation %d, want 1", c.Serial, c.IssuerGeneration)
	}
	iss := h.issuers[c.Profile]
	roots := x509.NewCertPool()
	roots.AddCert(iss)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("certificate %s does not verify against its issuer: %v", c.Serial, err)
	}
	if cert.NotAfter.After(iss.NotAfter) {
		t.Errorf("certificate %s outlives its issuer (R-V7)", c.Serial)
	}
	return cert
}

// Object identifiers of the SIGN subjectAltName's otherNames (R-P2).
var (
	oidName       = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 1}
	oidNameMap    = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 2}
	oidSex        = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 3}
	oidBirth      = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 4}
	oidAddress    = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 5}
	oidAddressMap = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 6}

	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// otherName is one entry of a subjectAltName.
type otherName struct {
	oid   asn1.ObjectIdentifier
	value string
}

// otherNames reads a certificate's subjectAltName, which must hold
// otherNames only, each value [0] EXPLICIT UTF8String (R-P2).
func otherNames(t testing.TB, cert *x509.Certificate) []otherName {
	t.Helper()
	var out []otherName
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var names cryptobyte.String
		if !in.ReadASN1(&names, cbasn1.SEQUENCE) || !in.Empty() {
			t.Fatal("subjectAltName is not a SEQUENCE")
		}
		for !names.Empty() {
			var name, value, text cryptobyte.String
			var oid asn1.ObjectIdentifier
			if !names.ReadASN1(&name, cbasn1.Tag(0).ContextSpecific().Constructed()) {
				t.Fatal("subjectAltName holds a GeneralName that is not an otherName")
			}
			if !name.ReadASN1ObjectIdentifier(&oid) ||
				!name.ReadASN1(&value, cbasn1.Tag(0).ContextSpecific().Constructed()) || !name.Empty() ||
				!value.ReadASN1(&text, cbasn1.UTF8String) || !value.Empty() {
				t.Fatal("otherName is not type-id, [0] EXPLICIT UTF8String")
			}
			out = append(out, otherName{oid, string(text)})
		}
	}
	return out
}

// checkSign checks the personal data of a SIGN certificate against the
// request, where no character needed a substitute; tests of substitution
// look at the values themselves.
func (h *harness) checkSign(t *testing.T, cert *x509.Certificate, req *cav1.IssueRequest) {
	t.Helper()
	names := otherNames(t, cert)
	var oids []string
	for _, n := range names {
		oids = append(oids, n.oid.String())
	}
	wantOIDs := []string{oidName.String(), oidBirth.String(), oidSex.String(), oidAddress.String(), oidNameMap.String(), oidAddressMap.String()}
	if !slices.Equal(oids, wantOIDs) {
		t.Fatalf("SIGN subjectAltName otherNames %v, want %v (R-P2)", oids, wantOIDs)
	}
	if len(req.NameSubstitutions) > 0 || len(req.AddressSubstitutions) > 0 {
		return
	}
	hol := req.Holder
	name := hol.Surname + "\u3000" + hol.GivenName
	if got := names[0].value; got != name {
		t.Errorf("name %q, want %q", got, name)
	}
	if got, want := names[4].value, strings.Repeat("0", len([]rune(name))); got != want {
		t.Errorf("name substitution map %q, want %q", got, want)
	}
	if got := names[3].value; got != hol.Address {
		t.Errorf("address %q, want %q", got, hol.Address)
	}
	if got, want := names[5].value, strings.Repeat("0", len([]rune(hol.Address))); got != want {
		t.Errorf("address substitution map %q, want %q", got, want)
	}
	if got, want := names[2].value, fmt.Sprint(int32(hol.Sex)); got != want {
		t.Errorf("sex %q, want %q", got, want)
	}
	if got, want := names[1].value, eraDate(hol.DateOfBirth); got != want {
		t.Errorf("date of birth %q, want %q", got, want)
	}
}

// eraDate is R-P2's date of birth: the era digit, then YYYYMMDD.
func eraDate(date string) string {
	era := "5" // Reiwa, from 2019-05-01
	switch {
	case date < "1912-07-30":
		era = "1"
	case date < "1926-12-25":
		era = "2"
	case date < "1989-01-08":
		era = "3"
	case date < "2019-05-01":
		era = "4"
	}
	return era + strings.ReplaceAll(date, "-", "")
}

// checkAuth checks that an AUTH certificate says nothing about the person
// (R-P3): subject C and CN only, no subjectAltName, none of the holder's
// data anywhere in it.
func checkAuth(t *testing.T, cert *x509.Certificate, hol *cav1.Holder) {
	t.Helper()
	if n := cert.Subject.Names; len(n) != 2 || len(cert.Subject.Country) != 1 || cert.Subject.CommonName == "" {
		t.Errorf("AUTH subject %v, want C and CN only (R-P3)", cert.Subject)
	}
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidSubjectAltName) {
			t.Error("AUTH certificate has a subjectAltName (R-P3)")
		}
	}
	for _, s := range []string{hol.Surname, hol.GivenName, hol.Address, hol.HolderId, strings.ReplaceAll(hol.DateOfBirth, "-", "")} {
		if s != "" && bytes.Contains(cert.Raw, []byte(s)) {
			t.Errorf("AUTH certificate contains the holder's %q (R-P3)", s)
		}
	}
}

// Refusals.

// refused makes a call that must be refused with code and exactly the
// violations want, and checks that it changed nothing: the same
// certificate records and inquiries in the store, the same list for the
// holder through the API. The keys of the refused request go back to the
// pool, since none of them was certified.
func (h *harness) refused(t *testing.T, code codes.Code, want []violation, call func() error, req *cav1.IssueRequest) {
	t.Helper()
	before := h.snapshot(t, req.GetHolder())
	err := call()
	after := h.snapshot(t, req.GetHolder())
	if err == nil {
		t.Fatalf("granted, want %v %v", code, want)
	}
	if before != after {
		t.Errorf("the refused request changed the CA:\nbefore:\n%s\nafter:\n%s", before, after)
	} else {
		for _, p := range req.GetProfiles() {
			holderKeys.giveBack(t, p.Csr)
		}
	}
	checkRefusal(t, err, code, want)
}

// checkRefusal checks a gRPC error: its code, and a BadRequest detail with
// exactly the violations want (by field and rule id, the Reason), each
// description starting with its rule id and containing what want says.
func checkRefusal(t *testing.T, err error, code codes.Code, want []violation) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("not a gRPC status: %v", err)
	}
	if st.Code() != code {
		t.Errorf("code %v, want %v: %s", st.Code(), code, describe(err))
	}
	var got []*errdetails.BadRequest_FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			got = append(got, br.FieldViolations...)
		}
	}
	key := func(field, rule string) string { return field + " " + rule }
	var gotKeys, wantKeys []string
	for _, v := range got {
		gotKeys = append(gotKeys, key(v.Field, v.Reason))
		if !strings.HasPrefix(v.Description, v.Reason+": ") {
			t.Errorf("violation of %s: description %q does not start with the rule id", v.Field, v.Description)
		}
	}
	for _, w := range want {
		wantKeys = append(wantKeys, key(w.field, w.rule))
	}
	slices.Sort(gotKeys)
	slices.Sort(wantKeys)
	if !slices.Equal(gotKeys, wantKeys) {
		t.Fatalf("violations %q, want %q: %s", gotKeys, wantKeys, describe(err))
	}
	// Each violation that must say something: one of the field's says it
	// all (a field may be violated more than once, e.g. two characters).
	for _, w := range want {
		if len(w.says) == 0 {
			continue
		}
		var descriptions []string
		for _, v := range got {
			if v.Field == w.field && v.Reason == w.rule {
				descriptions = append(descriptions, v.Description)
			}
		}
		if !slices.ContainsFunc(descriptions, func(d string) bool {
			return !slices.ContainsFunc(w.says, func(s string) bool { return !strings.Contains(d, s) })
		}) {
			t.Errorf("no violation of %s (%s) says all of %q: %q", w.field, w.rule, w.says, descriptions)
		}
	}
}

// describe renders a gRPC error with its field violations.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v %q", st.Code(), st.Message())
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				fmt.Fprintf(&b, "\n\t%s [%s] %s", v.Field, v.Reason, v.Description)
			}
		}
	}
	return b.String()
}

// snapshot renders what a refusal must not change: every certificate
// record and inquiry in the store, and the holder's certificates as
// ListCertificates shows them.
func (h *harness) snapshot(t *testing.T, hol *cav1.Holder) string {
	t.Helper()
	var b strings.Builder
	err := h.store.ForEachCertificate(func(r *storev1.Certificate) error {
		fmt.Fprintf(&b, "record %x %s %s %v %x\n", r.Serial, r.HolderId, r.State, r.Revocation != nil, r.SupersededBy)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	inquiries := slices.Clone(h.inquiries)
	h.mu.Unlock()
	for _, id := range inquiries {
		inq, err := h.store.Inquiry(id)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "inquiry %s used %v by %x\n", id, inq.UsedAt != nil, inq.UsedBy)
	}
	list, err := h.client.ListCertificates(context.Background(),
		&cav1.ListCertificatesRequest{MunicipalityCode: kiyose.Code, HolderId: hol.GetHolderId()})
	if err != nil {
		// A holder id the CA refuses (R-P4) has nothing to list.
		fmt.Fprintf(&b, "list: %v\n", status.Code(err))
		return b.String()
	}
	for _, c := range list.Certificates {
		fmt.Fprintf(&b, "listed %s %v %s %s\n", c.Serial, c.Status, c.RevocationReason, c.SupersededBy)
	}
	return b.String()
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
