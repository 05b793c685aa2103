package main

import (
	"context"
	"os"
	"path/filepath"
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
	"github.com/shomei-pki/shomei/internal/testenv"
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
	return runWith(t, stdin, nil, append([]string{"events", "import"}, args...)...)
}

// issueBoth issues SIGN and AUTH to a new adult resident and returns their
// serials.
func issueBoth(t *testing.T, client cav1.CertificateAuthorityClient, holderID string) (sign, auth string) {
	t.Helper()
	csr := func() []byte {
		der, err := testenv.NewCardCSR()
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	resp, err := client.Issue(context.Background(), &cav1.IssueRequest{
		Municipality: testenv.Kiyose(),
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
var buildCA = sync.OnceValue(func() error { return testenv.Build(testDir.Root, "../shomei-ca") })

// caProc is a running shomei-ca.
type caProc struct {
	grpc string
}

// startCA runs the key ceremony (shomeictl init) on a new token label, then
// starts shomei-ca on it, with extra configuration, and waits until it
// listens. It is killed when the test ends.
func startCA(t *testing.T, dir, label, extra string) *caProc {
	t.Helper()
	if err := buildCA(); err != nil {
		t.Fatal(err)
	}
	if err := testDir.InitToken(label, softhsm.TestSOPIN, softhsm.TestPIN); err != nil {
		t.Fatal(err)
	}
	token, err := testenv.Token(testDir, label)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := testenv.WriteCA(dir, token, extra)
	if err != nil {
		t.Fatal(err)
	}
	// The key ceremony, as an operator runs it before the CA's first start.
	if r := run(t, "--config", conf, "init", "--operator", "ci-operator"); r.code != 0 {
		t.Fatalf("init: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	p := testenv.Command{Path: filepath.Join(testDir.Root, "shomei-ca"), Args: []string{"--config", conf},
		Ready: testenv.CAListening, Within: 60 * time.Second}.StartTest(t)
	return &caProc{grpc: p.Ready[0]}
}
