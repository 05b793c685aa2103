package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/internal/softhsm"
)

// TestEventsImportEndToEnd starts the real shomei-ca on a fresh SoftHSM2
// token, with a client token, issues SIGN and AUTH to two residents over
// gRPC, and imports a feed with the real shomeictl binary: an address
// change, a loss report, and between them a comment, a blank line and a
// malformed line carrying an address. It checks the summary, the reported
// line number, the certificates' status and reasons through GetCertificate,
// that nothing personal is printed, and that importing the same feed again
// (from standard input) replays every event and changes nothing.
func TestEventsImportEndToEnd(t *testing.T) {
	dir := t.TempDir()
	const token = "kiyose-feed-token-0123456789abcdef"
	tokenFile := filepath.Join(dir, "feed.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := startCA(t, dir, "ctl-events", `certificates:
  allow_ecdsa_p256: true
clients:
  - name: kiyose-feed
    token_file: feed.token
    municipalities: ["13221"]
`)
	conn, err := grpc.NewClient(ca.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(clienttoken.Bearer(token)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := cav1.NewCertificateAuthorityClient(conn)

	signA, authA := issueBoth(t, client, "CTL-EV-A")
	signB, authB := issueBoth(t, client, "CTL-EV-B")
	// Not before the issuance (an event only ends certificates issued
	// before it took effect), and not more than a minute ahead of the CA's
	// clock.
	effective := time.Now().Add(time.Second).In(time.FixedZone("JST", 9*3600)).Format(time.RFC3339)
	feed := filepath.Join(dir, "feed.jsonl")
	writeTestFile(t, feed, `# Kiyose-shi resident-registry feed
{"event_id":"e2e-move-A","municipality_code":"13221","holder_id":"CTL-EV-A","kind":"record_change","changed_fields":["address"],"cause":"move","effective_time":"`+effective+`"}
{"event_id":"e2e-bad","municipality_code":"13221","holder_id":"CTL-EV-A","kind":"record_change","changed_fields":["address"],"address":"東京都清瀬市中里５丁目８４２番地","effective_time":"`+effective+`"}

{"event_id":"e2e-loss-B","municipality_code":"13221","holder_id":"CTL-EV-B","kind":"loss_report","effective_time":"`+effective+`"}
`)

	r := importFeed(t, nil, "--addr", ca.grpc, "--token-file", tokenFile, feed)
	if r.code == 0 || !strings.Contains(r.stderr, "line 3: address: is not a key of the format\n") {
		t.Fatalf("first import: code %d; want a failure reporting line 3\nstdout:\n%sstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	wantSummary := `lines read              5
  blank or comment      2
  malformed             1
events applied          2
events replayed         0
events refused          0
events failed           0
certificates revoked    3
  affiliationChanged    1
  keyCompromise         2
already revoked before  0
`
	if r.stdout != wantSummary {
		t.Errorf("first import's summary:\n%s\nwant:\n%s", r.stdout, wantSummary)
	}
	if !strings.Contains(r.stderr, "1 of 3 event lines not applied (malformed 1, refused 0, failed 0)") {
		t.Errorf("first import's stderr:\n%s", r.stderr)
	}
	noPersonalData(t, r)
	t.Logf("first import:\n%s%s", r.stdout, r.stderr)

	want := map[string]string{signA: "affiliationChanged", authA: "", signB: "keyCompromise", authB: "keyCompromise"}
	before := map[string]*cav1.Certificate{}
	for serial, reason := range want {
		c := getCertificate(t, client, serial)
		switch {
		case reason == "" && c.Status != cav1.Status_STATUS_VALID:
			t.Errorf("%s %s is %v, want VALID", c.HolderId, c.Profile, c.Status)
		case reason != "" && (c.Status != cav1.Status_STATUS_REVOKED || c.RevocationReason != reason):
			t.Errorf("%s %s is %v (%q), want REVOKED (%s)", c.HolderId, c.Profile, c.Status, c.RevocationReason, reason)
		}
		before[serial] = c
	}

	// Again, from standard input: all replayed, nothing changed.
	in, err := os.Open(feed)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r = importFeed(t, in, "--addr", ca.grpc, "--token-file", tokenFile, "--concurrency", "1", "-")
	wantSummary = strings.NewReplacer(
		"events applied          2", "events applied          0",
		"events replayed         0", "events replayed         2",
		"certificates revoked    3\n  affiliationChanged    1\n  keyCompromise         2", "certificates revoked    0",
	).Replace(wantSummary)
	if r.code == 0 || r.stdout != wantSummary || !strings.Contains(r.stderr, "line 3: address: is not a key of the format\n") {
		t.Errorf("second import: code %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", r.code, r.stdout, wantSummary, r.stderr)
	}
	noPersonalData(t, r)
	for serial, c := range before {
		if after := getCertificate(t, client, serial); !proto.Equal(after, c) {
			t.Errorf("the second import changed %s %s:\nbefore %v\nafter  %v", c.HolderId, c.Profile, c, after)
		}
	}

	// A refused event is reported with its line and the CA's reason; a
	// client without a token is stopped at once.
	future := time.Now().Add(time.Hour).Format(time.RFC3339)
	refused := filepath.Join(dir, "refused.jsonl")
	// An event for a holder the CA never issued to, and an event id reused
	// for another event, are refused and named per line (R-R1).
	writeTestFile(t, refused, `{"event_id":"e2e-future","municipality_code":"13221","holder_id":"CTL-EV-A","kind":"death","effective_time":"`+future+`"}
{"event_id":"e2e-nobody","municipality_code":"13221","holder_id":"CTL-EV-NOBODY","kind":"death","effective_time":"`+effective+`"}
{"event_id":"e2e-move-A","municipality_code":"13221","holder_id":"CTL-EV-A","kind":"death","effective_time":"`+effective+`"}
`)
	r = importFeed(t, nil, "--addr", ca.grpc, "--token-file", tokenFile, refused)
	if r.code == 0 || !strings.Contains(r.stderr, "line 1: refused by the CA: InvalidArgument: effective_time: is in the future (R-R3)") ||
		!strings.Contains(r.stderr, "line 2: refused by the CA (holder unknown to the CA in this municipality): NotFound: holder_id:") ||
		!strings.Contains(r.stderr, "line 3: refused by the CA (event id already used for a different event): AlreadyExists: event_id:") ||
		!strings.Contains(r.stdout, "events refused          3\n") {
		t.Errorf("refused events: code %d\nstdout:\n%sstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	noPersonalData(t, r)
	if c := getCertificate(t, client, authA); c.Status != cav1.Status_STATUS_VALID {
		t.Errorf("a refused death revoked AUTH: %v", c.Status)
	}
	r = importFeed(t, nil, "--addr", ca.grpc, feed)
	if r.code == 0 || !strings.Contains(r.stderr, "refused by the CA: Unauthenticated") || !strings.Contains(r.stderr, "--token-file") {
		t.Errorf("without a token: code %d\nstdout:\n%sstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("without a token:\n%s", r.stderr)
}

// noPersonalData checks the import's output for the residents' ids and the
// address in the malformed line (R-P4).
func noPersonalData(t *testing.T, r result) {
	t.Helper()
	for _, s := range []string{"CTL-EV", "東京都", "清瀬市", "渡邊"} {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("the import printed %q (personal data, R-P4):\n%s%s", s, r.stdout, r.stderr)
		}
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// importFeed runs `shomeictl events import` with stdin.
func importFeed(t *testing.T, stdin *os.File, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"events", "import"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

var kiyose = &cav1.Municipality{Code: "13221", PrefectureRomaji: "Tokyo-to", MunicipalityRomaji: "Kiyose-shi", Prefecture: "東京都", Municipality: "清瀬市"}

// issueBoth issues SIGN and AUTH to a new adult resident and returns their
// serials.
func issueBoth(t *testing.T, client cav1.CertificateAuthorityClient, holderID string) (sign, auth string) {
	t.Helper()
	csr := func() []byte {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "card"}}, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	resp, err := client.Issue(context.Background(), &cav1.IssueRequest{
		Municipality: kiyose,
		Holder: &cav1.Holder{HolderId: holderID, Surname: "渡邊", GivenName: "鷗外", DateOfBirth: "1990-06-15", Sex: cav1.Sex_SEX_MALE,
			Address: "東京都清瀬市中里５丁目８４２番地"},
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles: []*cav1.ProfileRequest{
			{Profile: cav1.Profile_PROFILE_SIGN, Csr: csr()},
			{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr()},
		},
	})
	if err != nil {
		t.Fatalf("Issue for %s: %v", holderID, err)
	}
	return resp.Certificates[0].Serial, resp.Certificates[1].Serial
}

func getCertificate(t *testing.T, client cav1.CertificateAuthorityClient, serial string) *cav1.Certificate {
	t.Helper()
	resp, err := client.GetCertificate(context.Background(), &cav1.GetCertificateRequest{Serial: serial})
	if err != nil {
		t.Fatalf("GetCertificate %s: %v", serial, err)
	}
	return resp.Certificate
}

// The shomei-ca binary, built once for the tests that need it.
var (
	buildCA    sync.Once
	caBinary   string
	caBuildErr error
)

// caProc is a running shomei-ca (after cmd/shomei-ca/e2e_test.go).
type caProc struct {
	grpc string
	log  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listening = regexp.MustCompile(`msg=listening grpc=(\S+) http=(\S+)`)

// startCA runs the key ceremony (shomeictl init) on a new token label and
// starts shomei-ca on it, with extra configuration, and waits until it
// listens. It is killed when the test ends.
func startCA(t *testing.T, dir, label, extra string) *caProc {
	t.Helper()
	buildCA.Do(func() {
		caBinary = filepath.Join(testDir.Root, "shomei-ca")
		if out, err := exec.Command("go", "build", "-o", caBinary, "../shomei-ca").CombinedOutput(); err != nil {
			caBuildErr = fmt.Errorf("building shomei-ca: %v: %s", err, out)
		}
	})
	if caBuildErr != nil {
		t.Fatal(caBuildErr)
	}
	if err := testDir.InitToken(label, softhsm.TestSOPIN, softhsm.TestPIN); err != nil {
		t.Fatal(err)
	}
	mod, err := softhsm.Module()
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "pin"), softhsm.TestPIN+"\n")
	conf := filepath.Join(dir, "shomei.yaml")
	writeTestFile(t, conf, fmt.Sprintf(`store:
  path: shomei.db
hsm:
  module: %s
  module_env:
    SOFTHSM2_CONF: %s
  token_label: %s
  pin_file: pin
server:
  grpc_listen: 127.0.0.1:0
  http_listen: 127.0.0.1:0
  public_url: http://127.0.0.1:8080
%s`, mod, testDir.Conf, label, extra))
	// The key ceremony, as an operator runs it: shomei-ca refuses a store
	// without issuers.
	if r := run(t, "--config", conf, "init"); r.code != 0 {
		t.Fatalf("shomeictl init: code %d\n%s", r.code, r.stderr)
	}

	cmd := exec.Command(caBinary, "--config", conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &caProc{log: &syncBuffer{}}
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.log.Write([]byte(sc.Text() + "\n"))
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1]
			}
		}
	}()
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	select {
	case p.grpc = <-addrs:
	case err := <-done:
		done <- err
		t.Fatalf("shomei-ca exited before listening: %v\n%s", err, p.log)
	case <-time.After(60 * time.Second):
		t.Fatalf("shomei-ca did not listen within 60s\n%s", p.log)
	}
	return p
}
