package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// TestReplicaAcrossCARestart stops and restarts the CA, with an OCSP
// replica following it, three times on the same store and ports (issue 13,
// R-R4, R-R6):
//
//   - the stop ends the replication stream at once, so SIGTERM to exit is
//     well under the configured 30 s shutdown timeout (asserted < 10 s;
//     the target, < 2 s, is logged with the median);
//   - the CA stays down 0 s, 3 s and 8 s (an uncapped reconnection
//     backoff grows while it is down: gRPC's default had reached 6–10 s
//     after 8 s);
//   - after each restart a counter revocation reaches the replica, which
//     reconnected by itself: the time from the CA's readiness to the
//     replica answering revoked is logged (target < 2 s) and asserted
//     within 10 s.
//
// Run: go test ./cmd/shomei-ca -run TestReplicaAcrossCARestart -v
func TestReplicaAcrossCARestart(t *testing.T) {
	const (
		cityToken, replicaToken = "kiyose-restart-0123456789", "replica-restart-0123456789"
		shutdownTimeout         = 30 * time.Second
	)
	down := []time.Duration{0, 3 * time.Second, 8 * time.Second}
	cycles := len(down)
	dir := t.TempDir()
	for name, token := range map[string]string{"kiyose.token": cityToken, "replica.token": replicaToken} {
		if _, err := testenv.WriteFile(dir, name, token+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	caConfig := writeConfig(t, dir, "e2e-restart-ca", fmt.Sprintf(`  shutdown_timeout: %s
clients:
  - name: kiyose
    token_file: kiyose.token
    municipalities: ["13221"]
  - name: replica1
    token_file: replica.token
    replica: true
`, shutdownTimeout))
	pinListen(t, caConfig, grpcAddr, httpAddr)
	token, err := testenv.Token(testDir, "e2e-restart-replica")
	if err != nil {
		t.Fatal(err)
	}
	replicaConfig, err := testenv.WriteFile(dir, "replica.yaml",
		testenv.Replica{Name: "r1", CAAddress: grpcAddr, CA: "  token_file: replica.token\n", HSM: token}.YAML())
	if err != nil {
		t.Fatal(err)
	}
	ca := enrolReplica(t, startCA(t, caConfig), caConfig, replicaConfig)
	rp, addrs := startBinary(t, "shomei-ocsp", replicaConfig, testenv.ReplicaListening)
	waitSynced(t, rp, addrs[0], 10*time.Second, "the replica")
	url := "http://" + addrs[0] + "/ocsp"

	var certs []*cav1.Certificate
	for i := range cycles {
		sign, _ := issuePair(t, cav1.NewCertificateAuthorityClient(testenv.Dial(t, ca.grpc, cityToken)), fmt.Sprintf("RESTART-%d", i))
		certs = append(certs, sign)
	}
	work := t.TempDir()
	issuerPEM := writeCertPEM(t, filepath.Join(work, "sign-ca.pem"), fetchIssuer(t, ca, "shomei-sign-g1").Raw)
	// waitFor polls the replica until c's status is want, for at most
	// 10 s, and returns when it was seen.
	waitFor := func(c *cav1.Certificate, want string) time.Time {
		t.Helper()
		certPEM := writeCertPEM(t, filepath.Join(work, c.Serial+".pem"), c.Der)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			got := ocspStatus(t, work, "POST", url, issuerPEM, certPEM)
			if got == want {
				return time.Now()
			}
			if time.Now().After(deadline) {
				t.Fatalf("the replica says %s is %q after 10 s, want %q\nreplica log:\n%s\nCA log:\n%s", c.Serial, got, want, rp.Log, ca.Log)
			}
		}
	}
	for _, c := range certs {
		waitFor(c, "good")
	}

	var stops, resyncs []time.Duration
	for i, c := range certs {
		// The replica follows the CA: the stop must end its stream.
		start := time.Now()
		ca.stop(t)
		stop := time.Since(start)
		stops = append(stops, stop)
		if stop > 10*time.Second {
			t.Errorf("cycle %d: the CA took %v to stop with a replica connected (shutdown timeout %v)\n%s", i, stop, shutdownTimeout, ca.Log)
		}
		if strings.Contains(ca.Log.String(), "graceful stop timed out") {
			t.Errorf("cycle %d: the CA's graceful stop timed out:\n%s", i, ca.Log)
		}

		time.Sleep(down[i])
		ca = startCA(t, caConfig)
		ready := time.Now()
		_, err := cav1.NewCertificateAuthorityClient(testenv.Dial(t, ca.grpc, cityToken)).Revoke(context.Background(), &cav1.RevokeRequest{
			Serial: c.Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_AFFILIATION_CHANGED})
		if err != nil {
			t.Fatal(err)
		}
		resync := waitFor(c, "revoked affiliationChanged").Sub(ready)
		resyncs = append(resyncs, resync)
		t.Logf("cycle %d: CA stopped in %v; down %v; a revocation after its restart reached the replica %v after the CA was ready",
			i, stop.Round(time.Millisecond), down[i], resync.Round(time.Millisecond))
	}
	t.Logf("median of %d: stop %v, re-sync %v (targets: < 2 s each)", cycles,
		median(stops).Round(time.Millisecond), median(resyncs).Round(time.Millisecond))
	metrics := get(t, "http://"+addrs[0]+"/metrics")
	if !strings.Contains(metrics, "shomei_replica_snapshots_total 1\n") {
		t.Errorf("the replica took another snapshot across the restarts:\n%s", grepLines(metrics, "shomei_replica_"))
	}
	rp.stop(t)
	ca.stop(t)
}

// freeAddr is a loopback address with a port free now, for a process that
// must come back on the same one.
// median is the middle of ds (the upper one of an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
