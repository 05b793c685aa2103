package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// TestOCSPReplica runs shomei-ocsp against the real shomei-ca, each with
// its own SoftHSM2 token, and checks with openssl ocsp (R-R6, R-R4):
// the replica answers for certificates issued before it started (snapshot)
// and after; an address change shows as revoked within 1 s; with the CA
// stopped it keeps answering; after the CA restarts it resumes from its
// revision — no second snapshot — and picks up a death event. Tokens keep
// municipal systems and replicas apart.
func TestOCSPReplica(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const cityToken, replicaToken = "kiyose-0123456789abcdef", "replica-0123456789abcdef"
	write("kiyose.token", cityToken+"\n")
	write("replica.token", replicaToken+"\n")
	// A fixed port, so that the replica finds the CA after its restart.
	caAddr := freeAddr(t)
	caConfig := writeConfig(t, dir, "e2e-replica-ca", `clients:
  - name: kiyose
    token_file: kiyose.token
    municipalities: ["13221"]
  - name: replica1
    token_file: replica.token
    replica: true
`)
	pinListen(t, caConfig, caAddr, "")
	token, err := testenv.Token(testDir, "e2e-replica")
	if err != nil {
		t.Fatal(err)
	}
	replicaConfig := write("replica.yaml", testenv.Replica{Name: "r1", CAAddress: caAddr, CA: "  token_file: replica.token\n", HSM: token}.YAML())
	// Enrollment (R-R6): the replica makes its responder keys in its own
	// HSM and prints their pins; the operator adds them to the replica's
	// client on the CA and restarts it. Before that the CA certifies none.
	ca := startCA(t, caConfig)
	pins := printResponderKeys(t, replicaConfig)
	if len(pins) != 2 {
		t.Fatalf("shomei-ocsp --print-responder-keys printed %d keys, want 2 (sign-g1, auth-g1)", len(pins))
	}
	ca.stop(t)
	conf, err := os.ReadFile(caConfig)
	if err != nil {
		t.Fatal(err)
	}
	write("shomei.yaml", strings.Replace(string(conf), "    replica: true\n",
		"    replica: true\n    responder_keys: ["+strings.Join(pins, ", ")+"]\n", 1))
	ca = startCA(t, caConfig)
	ctx := context.Background()
	city := testenv.Dial(t, ca.grpc, cityToken)
	issue := func(id string) (sign, auth *cav1.Certificate) {
		t.Helper()
		return issuePair(t, cav1.NewCertificateAuthorityClient(city), id)
	}
	signA, authA := issue("REPL-A")

	// Tokens: the city may not follow, the replica may not issue.
	if _, err := cav1.NewReplicationClient(city).ListIssuers(ctx, &cav1.ListIssuersRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a municipal token listed issuers for replication: %v", err)
	}
	_, err = cav1.NewCertificateAuthorityClient(testenv.Dial(t, ca.grpc, replicaToken)).Issue(ctx, &cav1.IssueRequest{Municipality: kiyose, Holder: holder("REPL-X")})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("a replica token was let in to issue: %v", err)
	}

	rp, addrs := startBinary(t, "shomei-ocsp", replicaConfig, testenv.ReplicaListening)
	url := "http://" + addrs[0] + "/ocsp"
	// Until its first sync the replica vouches for nothing (internalError)
	// and says so on /healthz.
	waitSynced(t, rp, addrs[0], 10*time.Second, "the replica")

	// Counted per issuer and replica (R-R6), the CA's own responders too.
	caMetrics := get(t, "http://"+ca.http+"/metrics")
	for _, want := range []string{
		`shomei_ca_responder_certifications_total{issuer="sign-g1",outcome="certified",replica="replica1"} 1`,
		`shomei_ca_responder_certifications_total{issuer="auth-g1",outcome="certified",replica="replica1"} 1`,
	} {
		if !strings.Contains(caMetrics, want) {
			t.Errorf("CA metrics lack %s:\n%s", want, grepLines(caMetrics, "shomei_ca_responder"))
		}
	}

	work := t.TempDir()
	signIssuer := writeCertPEM(t, filepath.Join(work, "sign-ca.pem"), fetchIssuer(t, ca, "shomei-sign-g1").Raw)
	authIssuer := writeCertPEM(t, filepath.Join(work, "auth-ca.pem"), fetchIssuer(t, ca, "shomei-auth-g1").Raw)
	issuerOf := map[cav1.Profile]string{cav1.Profile_PROFILE_SIGN: signIssuer, cav1.Profile_PROFILE_AUTH: authIssuer}
	// waitFor polls the replica with openssl ocsp (POST) until c's status
	// is want, for at most limit.
	waitFor := func(c *cav1.Certificate, want string, limit time.Duration) time.Duration {
		t.Helper()
		certPEM := writeCertPEM(t, filepath.Join(work, c.Serial+".pem"), c.Der)
		start := time.Now()
		for {
			got := ocspStatus(t, work, "POST", url, issuerOf[c.Profile], certPEM)
			if got == want {
				return time.Since(start)
			}
			if time.Since(start) > limit {
				t.Fatalf("the replica says %s certificate %s is %q after %v, want %q\nreplica log:\n%s", c.Profile, c.Serial, got, limit, want, rp.Log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The snapshot has A's certificates.
	waitFor(signA, "good", 10*time.Second)
	waitFor(authA, "good", time.Second)
	if got := ocspStatus(t, work, "GET", url, signIssuer, writeCertPEM(t, filepath.Join(work, "a-sign.pem"), signA.Der)); got != "good" {
		t.Errorf("GET from the replica: SIGN is %q, want good", got)
	}

	// An address change reaches the replica within 1 s (R-R4).
	events := cav1.NewEventsClient(city)
	if _, err := events.ReportEvent(ctx, &cav1.ReportEventRequest{
		EventId: "repl-move-1", MunicipalityCode: "13221", HolderId: "REPL-A", Kind: cav1.EventKind_EVENT_KIND_RECORD_CHANGE,
		ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS}, Cause: cav1.ChangeCause_CHANGE_CAUSE_MOVE,
		EffectiveTime: time.Now().Format(time.RFC3339),
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("address change visible at the replica after %v", waitFor(signA, "revoked affiliationChanged", time.Second).Round(time.Millisecond))
	waitFor(authA, "good", 0)

	// Issued after the replica started: good there too.
	signB, authB := issue("REPL-B")
	t.Logf("new certificate good at the replica after %v", waitFor(signB, "good", 2*time.Second).Round(time.Millisecond))

	// The CA stops: the replica keeps answering from its copy.
	ca.stop(t)
	for _, c := range []struct {
		cert *cav1.Certificate
		want string
	}{{signA, "revoked affiliationChanged"}, {authA, "good"}, {signB, "good"}, {authB, "good"}} {
		waitFor(c.cert, c.want, 0)
	}
	// A nonce defeats the cache: freshly signed from the replica's copy.
	nonceOut, err := runOpenSSL("ocsp", "-issuer", signIssuer, "-cert", writeCertPEM(t, filepath.Join(work, "a-sign.pem"), signA.Der), "-CAfile", signIssuer, "-url", url)
	if err != nil || !strings.Contains(nonceOut, ": revoked") {
		t.Errorf("with the CA down, a nonce request to the replica: %v\n%s", err, nonceOut)
	}

	// The CA comes back; a death revokes both of B's certificates, and the
	// replica catches up without a second snapshot.
	ca = startCA(t, caConfig)
	city = testenv.Dial(t, ca.grpc, cityToken)
	if _, err := cav1.NewEventsClient(city).ReportEvent(ctx, &cav1.ReportEventRequest{
		EventId: "repl-death-1", MunicipalityCode: "13221", HolderId: "REPL-B", Kind: cav1.EventKind_EVENT_KIND_DEATH,
		EffectiveTime: time.Now().Format(time.RFC3339),
	}); err != nil {
		t.Fatal(err)
	}
	// The replica retries about every second while the CA is down.
	waitFor(signB, "revoked cessationOfOperation", 10*time.Second)
	waitFor(authB, "revoked cessationOfOperation", time.Second)
	metrics := get(t, "http://"+addrs[0]+"/metrics")
	if !strings.Contains(metrics, "shomei_replica_snapshots_total 1\n") {
		t.Errorf("the replica took another snapshot after the CA restarted:\n%s", grepLines(metrics, "shomei_replica_"))
	}
	if !strings.Contains(metrics, `shomei_revocation_visible_seconds_count{via="replica"} 3`) {
		t.Errorf("the replica measured no freshness for its 3 revocations:\n%s", grepLines(metrics, "shomei_revocation_visible"))
	}
	if !regexp.MustCompile(`msg="following the CA" since_revision=[1-9]`).MatchString(rp.Log.String()) {
		t.Errorf("the replica did not resume from a revision:\n%s", rp.Log)
	}
	for _, personal := range []string{"渡邊", "REPL-A", "REPL-B", "1990-06-15"} {
		if strings.Contains(rp.Log.String(), personal) {
			t.Errorf("the replica's log carries personal data %q", personal)
		}
	}
	rp.stop(t)
	ca.stop(t)
}

func runOpenSSL(args ...string) (string, error) {
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

// get returns the body of GET url.
func get(t *testing.T, url string) string {
	t.Helper()
	_, b := fetch(t, url)
	return string(b)
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// enrolReplica is the operator enrolling a replica's responder keys (R-R6):
// with the CA running (ca, started from caConfig), shomei-ocsp
// --print-responder-keys makes the keys and prints their pins; the operator
// adds them to the first replica client of caConfig and restarts the CA,
// which enrolReplica returns.
func enrolReplica(t *testing.T, ca *caProc, caConfig, replicaConfig string) *caProc {
	t.Helper()
	pins := printResponderKeys(t, replicaConfig)
	ca.stop(t)
	conf, err := os.ReadFile(caConfig)
	if err != nil {
		t.Fatal(err)
	}
	enrolled := strings.Replace(string(conf), "    replica: true\n",
		"    replica: true\n    responder_keys: ["+strings.Join(pins, ", ")+"]\n", 1)
	if enrolled == string(conf) {
		t.Fatal("enrolReplica: no replica client in the CA's configuration")
	}
	if err := os.WriteFile(caConfig, []byte(enrolled), 0o600); err != nil {
		t.Fatal(err)
	}
	return startCA(t, caConfig)
}

// printResponderKeys runs shomei-ocsp --print-responder-keys and returns the
// pins it prints.
func printResponderKeys(t *testing.T, config string) []string {
	t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "shomei-ocsp"), "--config", config, "--print-responder-keys").Output()
	if err != nil {
		t.Fatalf("shomei-ocsp --print-responder-keys: %v\n%s", err, out)
	}
	var pins []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 || !strings.HasPrefix(f[2], "sha256:") {
			t.Fatalf("shomei-ocsp --print-responder-keys printed %q", line)
		}
		pins = append(pins, f[2])
	}
	return pins
}

// waitSynced waits up to within for the replica rp, serving HTTP on
// httpAddr, to say on /healthz that it has synced with the CA, and fails
// the test, naming it what, if it does not.
func waitSynced(t *testing.T, rp *caProc, httpAddr string, within time.Duration, what string) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(20 * time.Millisecond) {
		r, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not sync within %v: %v\n%s", what, within, err, rp.Log)
		}
	}
}
