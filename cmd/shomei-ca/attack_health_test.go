package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// waitReady polls /readyz and the gRPC health service until both say
// ready (or both not), and returns the /readyz body.
func waitReady(t *testing.T, p *caProc, ready bool, within time.Duration) string {
	t.Helper()
	hc := healthpb.NewHealthClient(p.conn(t))
	want, wantGRPC := http.StatusOK, healthpb.HealthCheckResponse_SERVING
	if !ready {
		want, wantGRPC = http.StatusServiceUnavailable, healthpb.HealthCheckResponse_NOT_SERVING
	}
	var code int
	var body string
	var st healthpb.HealthCheckResponse_ServingStatus
	for deadline := time.Now().Add(within); ; time.Sleep(200 * time.Millisecond) {
		code, body = httpGet(t, "http://"+p.http+"/readyz")
		all := code == want
		for _, svc := range []string{"", "shomei.ca.v1.CertificateAuthority", "shomei.ca.v1.Events"} {
			resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
			st = resp.GetStatus()
			all = all && err == nil && st == wantGRPC
		}
		if all {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: /readyz %d %q, gRPC health %v; want ready=%v\n%s", within, code, body, st, ready, p.Log)
		}
	}
}

// TestAttackHSMKeyGoneAndBack: the HSM's token (its directory, here) is
// taken away while the CA runs, then put back. Liveness stays ok
// throughout; readiness (/readyz and the gRPC health status) turns not
// ready naming the HSM — and, once a revocation has waited longer than
// R-R4's 60 s for its CRL, naming the partition too — and ready again once
// the token is back; the CA issues again without a restart, and the CRL
// catches up.
func TestAttackHSMKeyGoneAndBack(t *testing.T) {
	pc := newPrivateCA(t, "")
	p := startCA(t, pc.config)
	cl := p.client(t)
	sign, _ := issuePair(t, cl, "ATT-H1")
	if body := waitReady(t, p, true, 30*time.Second); !strings.Contains(body, "hsm: ok") || !strings.Contains(body, "crl: ok") {
		t.Errorf("/readyz when all is well: %q", body)
	}

	away := pc.tokens + ".away"
	if err := os.Rename(pc.tokens, away); err != nil {
		t.Fatal(err)
	}
	restored := false
	t.Cleanup(func() {
		if !restored {
			os.Rename(away, pc.tokens)
		}
	})
	body := waitReady(t, p, false, 60*time.Second)
	if !strings.Contains(body, "hsm: not ready") || !strings.Contains(body, "shomei-") {
		t.Errorf("/readyz with the token gone: %q; want the HSM named, with the issuer key", body)
	}
	if code, live := httpGet(t, "http://"+p.http+"/healthz"); code != http.StatusOK || live != "ok\n" {
		t.Errorf("/healthz (liveness) with the token gone: %d %q, want 200 ok", code, live)
	}
	if _, err := cl.Issue(context.Background(), &cav1.IssueRequest{
		Municipality: kiyose, Holder: holder("ATT-H2"),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr(t, rsaKey(t))}},
	}); status.Code(err) != codes.Unavailable {
		t.Errorf("Issue with the token gone: %v, want Unavailable (try again)\n%s", err, p.Log)
	}
	// A revocation is recorded (the store needs no HSM), but its CRL cannot
	// be signed.
	if _, err := cl.Revoke(context.Background(), &cav1.RevokeRequest{Serial: sign.Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		_, body = httpGet(t, "http://"+p.http+"/readyz")
		if strings.Contains(body, "crl: not ready: CRLs: partition sign-g1-13221: no CRL published for") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz does not report the unpublishable CRL: %q", body)
		}
	}

	if err := os.Rename(away, pc.tokens); err != nil {
		t.Fatal(err)
	}
	restored = true
	waitReady(t, p, true, 60*time.Second)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		_, err := cl.Issue(context.Background(), &cav1.IssueRequest{
			Municipality: kiyose, Holder: holder("ATT-H3"),
			Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
			Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr(t, rsaKey(t))}},
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the token came back the CA still cannot issue: %v\n%s", err, p.Log)
		}
	}
	crlEntries(t, p, sign, sign.Serial)
	p.stop(t)
}

// TestAttackReplicaDisconnected: the CA an OCSP replica follows goes away
// (stopped here; a cut link or a revoked credential look the same). The
// replica's /readyz turns not ready, naming the sync and its age, once it
// has not heard from the CA for longer than its bound; and ready again when
// the CA is back.
func TestAttackReplicaDisconnected(t *testing.T) {
	caAddr := freeAddr(t)
	const replicaToken = "replica-attack-0123456789abcdef"
	pc := newPrivateCA(t, `clients:
  - name: replica1
    token_file: replica.token
    replica: true
`)
	if err := os.WriteFile(filepath.Join(pc.dir, "replica.token"), []byte(replicaToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pinListen(t, pc.config, caAddr, "")
	if err := pc.hsm.InitToken("replica", softhsm.TestSOPIN, softhsm.TestPIN); err != nil {
		t.Fatal(err)
	}
	token, err := testenv.Token(pc.hsm, "replica")
	if err != nil {
		t.Fatal(err)
	}
	replicaConfig, err := testenv.WriteFile(pc.dir, "replica.yaml", testenv.Replica{Name: "r-attack", CAAddress: caAddr,
		CA: "  token_file: replica.token\n", HSM: token}.YAML())
	if err != nil {
		t.Fatal(err)
	}

	ca := enrolReplica(t, startCA(t, pc.config), pc.config, replicaConfig)
	rp, addrs := startBinary(t, "shomei-ocsp", replicaConfig, testenv.ReplicaListening)
	readyz := "http://" + addrs[0] + "/readyz"
	waitFor := func(want int, within time.Duration) string {
		t.Helper()
		for deadline := time.Now().Add(within); ; time.Sleep(250 * time.Millisecond) {
			code, body := httpGet(t, readyz)
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s the replica's /readyz is %d %q, want %d\n%s", within, code, body, want, rp.Log)
			}
		}
	}
	if body := waitFor(http.StatusOK, 30*time.Second); !strings.Contains(body, "sync: ok") {
		t.Errorf("/readyz in sync: %q", body)
	}

	ca.stop(t)
	body := waitFor(http.StatusServiceUnavailable, 90*time.Second)
	if !strings.Contains(body, "sync: not ready: last in sync with the CA") {
		t.Errorf("/readyz cut off from the CA: %q; want the sync and its age named", body)
	}
	if code, _ := httpGet(t, "http://"+addrs[0]+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz cut off from the CA: %d, want 200 (it has synced before)", code)
	}

	ca = startCA(t, pc.config)
	waitFor(http.StatusOK, 90*time.Second)
	rp.stop(t)
	ca.stop(t)
}
