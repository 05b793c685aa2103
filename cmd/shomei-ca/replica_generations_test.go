package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/open"
)

// TestReplicaNewGeneration runs shomei-ocsp against the real shomei-ca
// while the CA gains a second SIGN generation (R-K1). Rotation through the
// API is not built yet, so the test records sign-g2 in the stopped CA's
// store and token (open.IssuerGeneration) and starts the CA again; the
// replica keeps running throughout. A certificate issued by sign-g2 reaches
// the replica on the Follow stream, the replica notices the unknown
// generation, gets a responder for it certified by the CA with sign-g2's
// key, and answers for it (openssl ocsp, against sign-g2 fetched from the
// CA's /issuers/), while still answering for sign-g1's certificates.
func TestReplicaNewGeneration(t *testing.T) {
	dir := t.TempDir()
	// A fixed port, so that the replica finds the CA after its restart.
	caAddr := freeAddr(t)
	// No clients: a development CA on loopback certifies any replica key.
	caConfig := writeConfig(t, dir, "e2e-gen-ca", "")
	pinListen(t, caConfig, caAddr, "")
	token, err := testenv.Token(testDir, "e2e-gen-replica")
	if err != nil {
		t.Fatal(err)
	}
	replicaConfig, err := testenv.WriteFile(dir, "replica.yaml", testenv.Replica{Name: "r1", CAAddress: caAddr, HSM: token}.YAML())
	if err != nil {
		t.Fatal(err)
	}
	ca := startCA(t, caConfig)
	signA, _ := issuePair(t, ca.client(t), "GEN-A")
	rp, addrs := startBinary(t, "shomei-ocsp", replicaConfig, testenv.ReplicaListening)
	url := "http://" + addrs[0] + "/ocsp"
	waitSynced(t, rp, addrs[0], 10*time.Second, "the replica")
	work := t.TempDir()
	g1PEM := writeCertPEM(t, filepath.Join(work, "sign-g1.pem"), fetchIssuer(t, ca, "shomei-sign-g1").Raw)
	waitOCSP := func(issuerPEM string, der []byte, name, want string, limit time.Duration) {
		t.Helper()
		certPEM := writeCertPEM(t, filepath.Join(work, name+".pem"), der)
		start := time.Now()
		for {
			// Until the replica answers for the generation: unauthorized,
			// which openssl reports as a failure.
			got, err := runOpenSSL("ocsp", "-issuer", issuerPEM, "-cert", certPEM, "-CAfile", issuerPEM, "-no_nonce", "-url", url)
			if err == nil {
				got = ocspStatus(t, work, "POST", url, issuerPEM, certPEM)
				if got == want {
					return
				}
			}
			if time.Since(start) > limit {
				t.Fatalf("the replica says %s is %q after %v, want %q\nreplica log:\n%s", name, got, limit, want, rp.Log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitOCSP(g1PEM, signA.Der, "a-sign", "good", 10*time.Second)

	// The CA stops; sign-g2 is made in its token and recorded ACTIVE.
	ca.stop(t)
	addGeneration(t, filepath.Join(dir, "shomei.db"), "e2e-gen-ca")
	ca = startCA(t, caConfig)
	g2 := fetchIssuer(t, ca, "shomei-sign-g2")
	g2PEM := writeCertPEM(t, filepath.Join(work, "sign-g2.pem"), g2.Raw)
	signB, _ := issuePair(t, ca.client(t), "GEN-B")
	if !strings.Contains(string(signB.Der), string(g2.SubjectKeyId)) {
		t.Fatalf("the certificate issued after the rotation does not name sign-g2's key")
	}
	// The Follow stream brings a certificate of sign-g2: the replica
	// lists the generations again (at most every 10 s) and certifies a
	// responder for it.
	waitOCSP(g2PEM, signB.Der, "b-sign", "good", 30*time.Second)
	waitOCSP(g1PEM, signA.Der, "a-sign", "good", 0)
	if rp.Cmd.ProcessState != nil {
		t.Fatal("the replica exited")
	}
	if !strings.Contains(rp.Log.String(), "answering for the CA's issuer generations") {
		t.Errorf("the replica did not log the new generations:\n%s", rp.Log)
	}
	rp.stop(t)
	ca.stop(t)
}

// addGeneration records the next SIGN generation in the stopped CA's store
// at path, its key made in the CA's token label, ACTIVE at once (sign-g1
// SUPERSEDED), with both link certificates: what a rotation does (R-K1).
func addGeneration(t *testing.T, path, label string) {
	t.Helper()
	ctx := context.Background()
	tok := open.Token(t, label)
	defer tok.Close()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	all, err := issuer.Load(st)
	if err != nil {
		t.Fatal(err)
	}
	var g1 issuer.Issuer
	for _, is := range all {
		if is.Profile == storev1.Profile_PROFILE_SIGN && is.Generation == 1 {
			g1 = is
		}
	}
	// A writer holding the HSM opens the sealed audit log, appends, and
	// seals it again, as shomeictl does offline (R-K3).
	key, err := audit.Key(ctx, tok, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := audit.NewCheckpointer(audit.CheckpointerConfig{Store: st, Signer: key, Witness: tok})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Open(ctx); err != nil {
		t.Fatal(err)
	}
	g1signer, err := tok.SignerFor(ctx, hsm.KeyRef{Label: g1.KeyLabel, ID: g1.KeyId}, g1.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := open.IssuerGeneration(ctx, tok, issuer.KeyLabel(g1.Profile, 2), g1.Certificate, g1signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddIssuerKey(&storev1.IssuerKey{Profile: g1.Profile, Generation: 2, KeyLabel: g2.Ref.Label, KeyId: g2.Ref.ID,
		KeyAlgorithm: string(hsm.RSA2048), CertificateDer: g2.Certificate.Raw, State: storev1.KeyState_KEY_STATE_ACTIVE,
		TokenLabel: tok.Label(), LinkNewWithOldDer: g2.NewWithOld.Raw, LinkOldWithNewDer: g2.OldWithNew.Raw},
		[]*storev1.AuditRecord{{Actor: "test", Action: "issuer.rotate"}}); err != nil {
		t.Fatal(err)
	}
	if err := cp.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
