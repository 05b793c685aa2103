package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// These tests run the real shomei-ca binary: real gRPC over TCP, a real
// SoftHSM2 token, a real bbolt file.

var (
	binDir  string
	testDir *softhsm.Dir
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, "shomei-ca tests", []string{"e2e-flow", "e2e-crash", "e2e-bench", "e2e-revoke", "e2e-replica-ca", "e2e-replica", "e2e-compromise", "e2e-compromise-big", "e2e-events-bench", "e2e-tls",
		"e2e-ocsp-flood", "e2e-addr-flood", "e2e-rp", "e2e-rp-ca", "e2e-rp-replica", "e2e-auth", "e2e-roles", "e2e-mtls", "e2e-audit", "e2e-audit-trunc",
		"e2e-audit-retarget", "e2e-two-ca", "e2e-migrate", "e2e-secret-dirs", "e2e-uninitialized", "e2e-generations", "e2e-gen-ca", "e2e-gen-replica", "e2e-backup", "e2e-notices", "e2e-rotation", "e2e-presign", "e2e-presign-two", "e2e-shards", "e2e-sealed-shared", "e2e-metrics-ca", "e2e-metrics-replica", "e2e-repository", "e2e-restart-ca", "e2e-restart-replica", "e2e-attack-repo", "e2e-attack-stop", "e2e-attack-cache", "e2e-attack-stop-grpc"}, func(dir *softhsm.Dir) error {
		testDir = dir
		binDir = filepath.Join(dir.Root, "bin")
		return testenv.Build(binDir, "../shomei-ca", "../shomeictl", "../shomei-ocsp")
	}))
}

// writeConfig writes a configuration for token label into dir.
func writeConfig(t testing.TB, dir, label string, extra string) string {
	t.Helper()
	token, err := testenv.Token(testDir, label)
	if err != nil {
		t.Fatal(err)
	}
	path, err := testenv.WriteCA(dir, token, extra)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// freeAddr is a loopback address free a moment ago: a fixed port, so that
// a replica finds the CA again after its restart.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// pinListen rewrites config (testenv.CAConfig, whose listeners take ports
// the kernel picks) to listen on grpcAddr and httpAddr (freeAddr); ""
// leaves that listener as it is.
func pinListen(t *testing.T, config, grpcAddr, httpAddr string) {
	t.Helper()
	conf, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	fixed := string(conf)
	if grpcAddr != "" {
		fixed = strings.Replace(fixed, "grpc_listen: 127.0.0.1:0", "grpc_listen: "+grpcAddr, 1)
	}
	if httpAddr != "" {
		fixed = strings.Replace(fixed, "http_listen: 127.0.0.1:0", "http_listen: "+httpAddr, 1)
	}
	if err := os.WriteFile(config, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
}

// caProc is a running shomei-ca (or shomei-ocsp) and the addresses it
// listens on.
type caProc struct {
	*testenv.Process
	grpc, http string
}

// startCA initializes config's store as an operator does (initStore) if
// it has no issuers yet, starts the binary and waits until it listens.
func startCA(t testing.TB, config string) *caProc {
	t.Helper()
	initStore(t, config)
	p, addrs := startBinary(t, "shomei-ca", config, testenv.CAListening)
	p.grpc, p.http = addrs[0], addrs[1]
	return p
}

// initStore runs the key ceremony on config's store, unless it has its
// issuers already, the way an operator does before the first start:
// shomeictl init (shomei-ca refuses a store without issuers).
func initStore(t testing.TB, config string) {
	t.Helper()
	if out, err := shomeictl(config, "init", "--existing-ok"); err != nil {
		t.Fatalf("shomeictl init: %v\n%s", err, out)
	}
}

// startBinary starts binary with --config config and waits for the log
// line ready matches, returning its submatches; the process is killed
// when the test ends.
func startBinary(t testing.TB, binary, config string, ready *regexp.Regexp) (*caProc, []string) {
	t.Helper()
	p := testenv.Command{Path: filepath.Join(binDir, binary), Args: []string{"--config", config}, Ready: ready, Within: 60 * time.Second}.StartTest(t)
	return &caProc{Process: p}, p.Ready
}

// stop sends SIGTERM and waits for a clean exit.
func (p *caProc) stop(t testing.TB) {
	t.Helper()
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatalf("%s after SIGTERM: %v\n%s", filepath.Base(p.Cmd.Path), err, p.Log)
	}
}

func (p *caProc) client(t testing.TB) cav1.CertificateAuthorityClient {
	t.Helper()
	return cav1.NewCertificateAuthorityClient(p.conn(t))
}

func (p *caProc) conn(t testing.TB) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(p.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// csr makes a card's PKCS#10 request for key (testenv.CardCSR).
func csr(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := testenv.CardCSR(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// bothProfiles asks for a SIGN and an AUTH certificate, each for a new
// RSA-2048 card key.
func bothProfiles(t testing.TB) []*cav1.ProfileRequest {
	t.Helper()
	return []*cav1.ProfileRequest{
		{Profile: cav1.Profile_PROFILE_SIGN, Csr: csr(t, rsaKey(t))},
		{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr(t, rsaKey(t))},
	}
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var kiyose = testenv.Kiyose()

func holder(id string) *cav1.Holder {
	return &cav1.Holder{HolderId: id, Surname: "渡邊", GivenName: "鷗外", DateOfBirth: "1990-06-15", Sex: cav1.Sex_SEX_MALE,
		Address: "東京都清瀬市中里５丁目８４２番地"}
}

// fetchIssuer gets an issuer certificate over the CA's HTTP listener.
func fetchIssuer(t testing.TB, p *caProc, label string) *x509.Certificate {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/issuers/" + label + ".pem")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	block, _ := pem.Decode(body)
	if resp.StatusCode != 200 || block == nil {
		t.Fatalf("GET issuer %s: %s %q", label, resp.Status, body)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func verify(t testing.TB, c *cav1.Certificate, issuer *x509.Certificate) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(c.Der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(issuer)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("x509.Verify %s: %v", c.Serial, err)
	}
	return cert
}

func TestIssueRenewList(t *testing.T) {
	dir := t.TempDir()
	p := startCA(t, writeConfig(t, dir, "e2e-flow", ""))
	cl := p.client(t)
	ctx := context.Background()
	today := time.Now().In(time.FixedZone("JST", 9*3600))
	signIssuer, authIssuer := fetchIssuer(t, p, "shomei-sign-g1"), fetchIssuer(t, p, "shomei-auth-g1")

	// A card expiring in 60 days caps both certificates and puts them in
	// their renewal window at once.
	card := today.AddDate(0, 0, 60).Format(time.DateOnly)
	issued, err := cl.Issue(ctx, &cav1.IssueRequest{
		Municipality: kiyose, Holder: holder("E2E-1"),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: card},
		Profiles:    bothProfiles(t),
	})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if len(issued.Certificates) != 2 {
		t.Fatalf("%d certificates, want 2", len(issued.Certificates))
	}
	for _, c := range issued.Certificates {
		if c.ExpiryDate != card || !strings.Contains(c.ExpiryReason, "card") || c.Status != cav1.Status_STATUS_VALID {
			t.Errorf("%s: expiry %s (%s), status %v; want the card's %s", c.Profile, c.ExpiryDate, c.ExpiryReason, c.Status, card)
		}
	}
	verify(t, issued.Certificates[0], signIssuer)
	verify(t, issued.Certificates[1], authIssuer)
	opensslVerify(t, issued.Certificates[0].Pem, signIssuer)

	// grpcurl, a client nobody here wrote, lists them.
	out := grpcurl(t, p.grpc, "shomei.ca.v1.CertificateAuthority/ListCertificates", `{"municipality_code":"13221","holder_id":"E2E-1"}`)
	for _, c := range issued.Certificates {
		if !strings.Contains(out, c.Serial) {
			t.Errorf("grpcurl ListCertificates lacks %s:\n%s", c.Serial, out)
		}
	}

	// Renew both with new card keys and a new card: 6th birthday after
	// the renewal date (R-V4).
	newCard := today.AddDate(10, 0, 0).Format(time.DateOnly)
	renewed, err := cl.Renew(ctx, &cav1.RenewRequest{
		Municipality: kiyose, Holder: holder("E2E-1"),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: newCard},
		Profiles:    bothProfiles(t),
	})
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	sixth := sixthBirthdayAfter(today, time.June, 15)
	for i, c := range renewed.Certificates {
		if c.ExpiryDate != sixth {
			t.Errorf("renewed %s expires %s (%s), want %s", c.Profile, c.ExpiryDate, c.ExpiryReason, sixth)
		}
		old, err := cl.GetCertificate(ctx, &cav1.GetCertificateRequest{Serial: issued.Certificates[i].Serial})
		if err != nil {
			t.Fatal(err)
		}
		o := old.Certificate
		if o.Status != cav1.Status_STATUS_REVOKED || o.RevocationReason != "superseded" || o.SupersededBy != c.Serial {
			t.Errorf("old %s after renewal: status %v reason %q superseded_by %q", o.Profile, o.Status, o.RevocationReason, o.SupersededBy)
		}
	}
	verify(t, renewed.Certificates[0], signIssuer)

	list, err := cl.ListCertificates(ctx, &cav1.ListCertificatesRequest{MunicipalityCode: "13221", HolderId: "E2E-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Certificates) != 4 || list.Certificates[0].Status != cav1.Status_STATUS_VALID || list.Certificates[3].Status != cav1.Status_STATUS_REVOKED {
		t.Errorf("ListCertificates: %d certificates, newest %v, oldest %v", len(list.Certificates), list.Certificates[0].Status, list.Certificates[len(list.Certificates)-1].Status)
	}
	p.stop(t)
	if logs := p.Log.String(); strings.Contains(logs, "渡邊") || strings.Contains(logs, "E2E-1") || strings.Contains(logs, "1990-06-15") {
		t.Errorf("the CA's log carries personal data (R-P4):\n%s", logs)
	}
}

// sixthBirthdayAfter is the 6th June 15 after today (today < June 15 counts).
func sixthBirthdayAfter(today time.Time, m time.Month, d int) string {
	y := today.Year()
	if !(today.Month() < m || (today.Month() == m && today.Day() < d)) {
		y++
	}
	return time.Date(y+5, m, d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}

func opensslVerify(t testing.TB, certPEM string, issuer *x509.Certificate) {
	t.Helper()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	leaf := filepath.Join(dir, "leaf.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer.Raw}), 0o600)
	os.WriteFile(leaf, []byte(certPEM), 0o600)
	out, err := exec.Command("openssl", "verify", "-CAfile", ca, leaf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify: %v %s", err, out)
	}
}

func grpcurl(t testing.TB, addr, method, body string) string {
	t.Helper()
	cmd := exec.Command("go", "tool", "-modfile=../../internal/tools/go.mod", "grpcurl", "-plaintext", "-d", body, addr, method)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("grpcurl %s: %v\n%s", method, err, out)
	}
	return string(out)
}

// TestCrashMidStream kills the CA with SIGKILL while clients are issuing and
// checks after a restart that every certificate a client received is in the
// store, and that no certificate is left in an unknown state.
func TestCrashMidStream(t *testing.T) {
	dir := t.TempDir()
	conf := writeConfig(t, dir, "e2e-crash", "certificates:\n  allow_ecdsa_p256: true\n")
	p := startCA(t, conf)
	cl := p.client(t)

	type got struct {
		serial string
		der    []byte
	}
	var mu sync.Mutex
	var received []got
	var wg sync.WaitGroup
	stop := make(chan struct{})
	card := time.Now().AddDate(8, 0, 0).Format(time.DateOnly)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// P-256 card keys: cheap to make in numbers (RSA keys take
				// tens of milliseconds each); the CA's work is the same.
				key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				resp, err := cl.Issue(context.Background(), &cav1.IssueRequest{
					Municipality: kiyose, Holder: &cav1.Holder{HolderId: fmt.Sprintf("CRASH-%d-%d", w, i), DateOfBirth: "1985-01-02"},
					Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: card},
					Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr(t, key)}},
				})
				if err != nil {
					return // the CA is gone
				}
				mu.Lock()
				received = append(received, got{resp.Certificates[0].Serial, resp.Certificates[0].Der})
				n := len(received)
				mu.Unlock()
				if n == 150 {
					p.Cmd.Process.Signal(syscall.SIGKILL)
				}
			}
		}()
	}
	select {
	case <-p.Exited():
	case <-time.After(120 * time.Second):
		t.Fatal("the CA was not killed within 120s")
	}
	close(stop)
	wg.Wait()
	t.Logf("%d certificates received before SIGKILL", len(received))
	if len(received) < 150 {
		t.Fatalf("only %d certificates received", len(received))
	}

	// Restart: pending issuances of the killed process are abandoned.
	p2 := startCA(t, conf)
	cl2 := p2.client(t)
	for _, g := range received {
		resp, err := cl2.GetCertificate(context.Background(), &cav1.GetCertificateRequest{Serial: g.serial})
		if err != nil {
			t.Fatalf("certificate %s received before the crash: %v", g.serial, err)
		}
		if !bytes.Equal(resp.Certificate.Der, g.der) || resp.Certificate.Status != cav1.Status_STATUS_VALID {
			t.Fatalf("certificate %s: stored DER differs or status %v", g.serial, resp.Certificate.Status)
		}
	}
	p2.stop(t)

	// Every serial the store knows is ISSUED or ABANDONED: none pending,
	// none half-written.
	out, err := exec.Command(filepath.Join(binDir, "shomeictl"), "--config", conf, "audit", "verify", "--offline").CombinedOutput()
	if err != nil {
		t.Fatalf("audit verify after the crash: %v %s", err, out)
	}
	states := certificateStates(t, filepath.Join(dir, "shomei.db"))
	t.Logf("store after restart: %v; %s", states, strings.TrimSpace(string(out)))
	if states["CERT_STATE_PENDING"] != 0 || states["CERT_STATE_ISSUED"] < len(received) {
		t.Fatalf("store after restart: %v, %d received", states, len(received))
	}
}
