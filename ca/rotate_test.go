package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/testenv"
)

var approval = Approval{ProposalID: "p-1", Proposer: "alice", Approvers: []string{"alice", "bob"}}

// parsed is the certificate of an issued record.
func parsed(t *testing.T, rec *storev1.Certificate) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(rec.Der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// verifies checks leaf with x509.Verify, root the only trusted
// certificate.
func verifies(leaf, root *x509.Certificate) error {
	roots := x509.NewCertPool()
	roots.AddCert(root)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: leaf.NotBefore.Add(time.Hour),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// linked checks leaf ← link ← root signature by signature. (x509.Verify
// cannot: it counts the self-issued link against the root's
// pathLenConstraint 0, where RFC 5280 §6.1.4 (l) does not count
// self-issued certificates; openssl follows the RFC, see opensslVerify.)
func linked(leaf, link, root *x509.Certificate) error {
	if err := leaf.CheckSignatureFrom(link); err != nil {
		return fmt.Errorf("leaf by link: %w", err)
	}
	if err := link.CheckSignatureFrom(root); err != nil {
		return fmt.Errorf("link by root: %w", err)
	}
	if !bytes.Equal(leaf.AuthorityKeyId, link.SubjectKeyId) || !bytes.Equal(link.AuthorityKeyId, root.SubjectKeyId) {
		return errors.New("key identifiers do not chain")
	}
	return nil
}

// holderRequest is request() for another holder of the same data.
func holderRequest(t testing.TB, id string, profiles ...Profile) IssueRequest {
	req := request(t, profiles...)
	req.Holder.ID = id
	return req
}

// Rotation (R-K1): certificates before and after verify against their own
// generation only; the new issuer has the same DN and another key; its
// AKI, CRL partition and URL follow its generation; the link
// certificates let a relying party holding either issuer verify the
// other's certificates; the audit log names the proposer and approvers.
func TestRotateMovesIssuance(t *testing.T) {
	changed := 0
	c := newTestCA(t, caOptions{onIssuersChanged: func() { changed++ }})
	before := c.mustIssue(t, ceremonyDay, false, request(t, ProfileSign, ProfileAuth))
	c.setDate(t, "2027-01-05")
	g1 := c.IssuerCertificate(ProfileSign, 1)
	key, err := c.Rotate(context.Background(), ProfileSign, time.Time{}, approval)
	if err != nil {
		t.Fatal(err)
	}
	if key.Generation != 2 || key.State != storev1.KeyState_KEY_STATE_ACTIVE || key.KeyLabel != "shomei-sign-g2" || key.KeyAlgorithm != "rsa2048" {
		t.Fatalf("new generation %d %s %q %q, want 2 ACTIVE shomei-sign-g2 rsa2048", key.Generation, key.State, key.KeyLabel, key.KeyAlgorithm)
	}
	if changed != 1 {
		t.Errorf("OnIssuersChanged called %d times, want 1", changed)
	}
	g2 := c.IssuerCertificate(ProfileSign, 2)
	if g2 == nil || !bytes.Equal(g2.RawSubject, g1.RawSubject) || bytes.Equal(g2.SubjectKeyId, g1.SubjectKeyId) {
		t.Fatalf("generation 2 must have generation 1's DN and another key id")
	}
	if err := issuer.Check(g2, issuer.DefaultDN(ProfileSign), g2.NotBefore, g2.NotBefore.AddDate(10, 0, 0)); err != nil {
		t.Errorf("generation 2's certificate: %v", err)
	}
	states := map[string]storev1.KeyState{}
	for _, g := range c.IssuerGenerations() {
		states[g.Name] = g.State
	}
	if states["sign-g1"] != storev1.KeyState_KEY_STATE_SUPERSEDED || states["sign-g2"] != storev1.KeyState_KEY_STATE_ACTIVE ||
		states["auth-g1"] != storev1.KeyState_KEY_STATE_ACTIVE {
		t.Errorf("generations after the rotation: %v", states)
	}

	after := c.mustIssue(t, "2027-01-05", false, holderRequest(t, "holder-2", ProfileSign, ProfileAuth))
	oldSign, newSign := parsed(t, before.Certificates[0]), parsed(t, after.Certificates[0])
	if !bytes.Equal(oldSign.AuthorityKeyId, g1.SubjectKeyId) || !bytes.Equal(newSign.AuthorityKeyId, g2.SubjectKeyId) {
		t.Errorf("AKIs %x and %x, want generation 1's %x and 2's %x", oldSign.AuthorityKeyId, newSign.AuthorityKeyId, g1.SubjectKeyId, g2.SubjectKeyId)
	}
	if got := after.Certificates[0].IssuerGeneration; got != 2 {
		t.Errorf("new SIGN certificate recorded with issuer generation %d, want 2", got)
	}
	if got := after.Certificates[1].IssuerGeneration; got != 1 {
		t.Errorf("AUTH certificate recorded with issuer generation %d; AUTH was not rotated", got)
	}
	if p := after.Certificates[0].CrlPartition; !strings.HasPrefix(p, "sign-g2-") || len(newSign.CRLDistributionPoints) == 0 ||
		!strings.Contains(newSign.CRLDistributionPoints[0], "/sign-g2-") {
		t.Errorf("new certificate's partition %q and CRL URLs %v must be generation 2's", p, newSign.CRLDistributionPoints)
	}
	if !strings.Contains(oldSign.CRLDistributionPoints[0], "/sign-g1-") {
		t.Errorf("old certificate's CRL URLs %v must be generation 1's", oldSign.CRLDistributionPoints)
	}
	if err := verifies(oldSign, g1); err != nil {
		t.Errorf("the certificate before the rotation does not verify with generation 1: %v", err)
	}
	if err := verifies(newSign, g2); err != nil {
		t.Errorf("the certificate after the rotation does not verify with generation 2: %v", err)
	}
	if verifies(newSign, g1) == nil || verifies(oldSign, g2) == nil {
		t.Error("a certificate verifies with the other generation without a link")
	}

	newWithOld, err := x509.ParseCertificate(key.LinkNewWithOldDer)
	if err != nil {
		t.Fatal(err)
	}
	oldWithNew, err := x509.ParseCertificate(key.LinkOldWithNewDer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(newWithOld.AuthorityKeyId, g1.SubjectKeyId) || !bytes.Equal(newWithOld.SubjectKeyId, g2.SubjectKeyId) ||
		!bytes.Equal(oldWithNew.AuthorityKeyId, g2.SubjectKeyId) || !bytes.Equal(oldWithNew.SubjectKeyId, g1.SubjectKeyId) {
		t.Error("link certificates' key identifiers are not new-by-old and old-by-new")
	}
	if newWithOld.NotAfter.After(g1.NotAfter) || oldWithNew.NotAfter.After(g1.NotAfter) {
		t.Error("a link certificate outlives the old issuer certificate")
	}
	// A relying party that holds only generation 1 verifies generation 2's
	// certificates through NewWithOld, and one that holds only generation
	// 2 verifies generation 1's through OldWithNew.
	if err := linked(newSign, newWithOld, g1); err != nil {
		t.Errorf("new certificate, old issuer trusted, NewWithOld given: %v", err)
	}
	if err := linked(oldSign, oldWithNew, g2); err != nil {
		t.Errorf("old certificate, new issuer trusted, OldWithNew given: %v", err)
	}
	if linked(newSign, oldWithNew, g1) == nil {
		t.Error("the links are interchangeable")
	}
	opensslVerify(t, c.clock, g1, newWithOld, newSign)
	opensslVerify(t, c.clock, g2, oldWithNew, oldSign)

	// Both generations answer OCSP for their own certificates.
	for _, tc := range []struct {
		rec *storev1.Certificate
		iss *x509.Certificate
	}{{before.Certificates[0], g1}, {after.Certificates[0], g2}} {
		if got := c.IssuerCertificate(ProfileSign, tc.rec.IssuerGeneration); !got.Equal(tc.iss) {
			t.Errorf("issuer of generation %d is not the one that signed", tc.rec.IssuerGeneration)
		}
		if _, _, err := c.IssuerSigner(ProfileSign, tc.rec.IssuerGeneration); err != nil {
			t.Errorf("generation %d does not sign its CRLs: %v", tc.rec.IssuerGeneration, err)
		}
	}

	var rotate *storev1.AuditRecord
	actions := map[string]int{}
	if err := c.store.AuditRecords(func(r *storev1.AuditRecord) error {
		actions[r.Action]++
		if r.Action == "issuer.rotate" {
			rotate = r
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if actions["issuer.key.generate"] != 1 || actions["issuer.certificate.create"] != 1 || actions["issuer.link.create"] != 2 || rotate == nil {
		t.Fatalf("audit actions %v", actions)
	}
	fields := map[string]string{}
	for _, f := range rotate.Fields {
		fields[f.Key] = f.Value
	}
	if rotate.Actor != "alice" || fields["approvers"] != "alice,bob" || fields["proposal"] != "p-1" || fields["issuer"] != "sign-g2" {
		t.Errorf("issuer.rotate audit record: actor %q fields %v", rotate.Actor, fields)
	}
	if _, err := c.store.VerifyAudit(); err != nil {
		t.Error(err)
	}
}

// opensslVerify checks with `openssl verify` that leaf chains to root (the
// only trusted certificate) through link.
func opensslVerify(t *testing.T, now time.Time, root, link, leaf *x509.Certificate) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl, which make test installs (deploy/dev/deps.sh): %v", err)
	}
	dir := t.TempDir()
	write := func(name string, c *x509.Certificate) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootPEM, linkPEM, leafPEM := write("root.pem", root), write("link.pem", link), write("leaf.pem", leaf)
	at := fmt.Sprint(now.Unix())
	out, err := exec.Command("openssl", "verify", "-attime", at, "-partial_chain", "-CAfile", rootPEM, "-untrusted", linkPEM, leafPEM).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Errorf("openssl verify through the link certificate: %v\n%s", err, out)
	}
	// Without the link it fails: the test can fail.
	out, err = exec.Command("openssl", "verify", "-attime", at, "-partial_chain", "-CAfile", rootPEM, leafPEM).CombinedOutput()
	if err == nil {
		t.Errorf("openssl verified without the link certificate:\n%s", out)
	}
}

// Issuance running while the issuer is rotated: not one request fails, and
// every certificate verifies with the generation it names.
func TestRotateUnderIssuance(t *testing.T) {
	c := newTestCA(t, caOptions{})
	c.setDate(t, "2027-01-05")
	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		failures atomic.Int64
		mu       sync.Mutex
		issued   []*storev1.Certificate
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load() || i < 3; i++ {
				out, err := c.Issue(context.Background(), holderRequest(t, fmt.Sprintf("holder-w%d-%d", w, i), ProfileSign))
				if err != nil {
					failures.Add(1)
					t.Errorf("issuance during the rotation: %v", err)
					return
				}
				mu.Lock()
				issued = append(issued, out.Certificates...)
				mu.Unlock()
			}
		})
	}
	if _, err := c.Rotate(context.Background(), ProfileSign, time.Time{}, approval); err != nil {
		t.Fatal(err)
	}
	// Some issuance after it, then stop.
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := 0
		for _, rec := range issued {
			if rec.IssuerGeneration == 2 {
				n++
			}
		}
		mu.Unlock()
		if n >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d requests failed during the rotation", failures.Load())
	}
	gens := map[uint32]int{}
	for _, rec := range issued {
		gens[rec.IssuerGeneration]++
		if err := verifies(parsed(t, rec), c.IssuerCertificate(ProfileSign, rec.IssuerGeneration)); err != nil {
			t.Errorf("certificate of generation %d: %v", rec.IssuerGeneration, err)
		}
	}
	if gens[1] == 0 || gens[2] == 0 {
		t.Errorf("certificates by generation %v: want both generations", gens)
	}
}

// A rotation with an activation time makes a PENDING generation: issuance
// stays on the old one, a second rotation is refused, and the CA's timer
// activates it at its time (R-K1).
func TestRotatePendingActivates(t *testing.T) {
	clock := testenv.NewClock(at(t, "2027-01-05"))
	changed := make(chan struct{}, 10)
	c := newTestCA(t, caOptions{now: clock.Now, onIssuersChanged: func() { changed <- struct{}{} }})
	ctx := context.Background()

	for _, tc := range []struct {
		at   time.Time
		says string
	}{{clock.Now().Add(-2 * time.Minute), "in the past"}, {clock.Now().AddDate(1, 0, 1), "more than a year ahead"}} {
		_, err := c.Rotate(ctx, ProfileSign, tc.at, approval)
		refusal{KindInvalid, "activate_at", "R-K1", tc.says}.check(t, err)
	}
	refusal{KindInvalid, "profile", "R-K1", "SIGN or AUTH"}.check(t, c.CheckRotate(Profile(9), time.Time{}))

	activateAt := clock.Now().Add(time.Hour)
	key, err := c.Rotate(ctx, ProfileSign, activateAt, approval)
	if err != nil {
		t.Fatal(err)
	}
	if key.State != storev1.KeyState_KEY_STATE_PENDING || !key.ActivateAt.AsTime().Equal(activateAt) {
		t.Fatalf("generation 2: %s activating %v, want PENDING at %v", key.State, key.ActivateAt.AsTime(), activateAt)
	}
	<-changed
	_, err = c.Rotate(ctx, ProfileSign, time.Time{}, approval)
	refusal{KindPrecondition, "profile", "R-K1", "sign-g2 is already pending"}.check(t, err)
	if _, _, err := c.IssuerSigner(ProfileSign, 2); !errors.Is(err, ErrIssuerNotSigning) {
		t.Errorf("IssuerSigner of the pending generation: %v, want ErrIssuerNotSigning", err)
	}
	out, err := c.Issue(ctx, holderRequest(t, "holder-p1", ProfileSign))
	if err != nil {
		t.Fatal(err)
	}
	if g := out.Certificates[0].IssuerGeneration; g != 1 {
		t.Fatalf("issued by generation %d before the activation time, want 1", g)
	}

	// The time comes: the timer (woken, as it would be at most a minute
	// later) records the activation and moves issuance.
	clock.Add(time.Hour)
	c.wakeActivation()
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("the pending generation was not activated")
	}
	states := map[string]storev1.KeyState{}
	for _, g := range c.IssuerGenerations() {
		states[g.Name] = g.State
	}
	if states["sign-g1"] != storev1.KeyState_KEY_STATE_SUPERSEDED || states["sign-g2"] != storev1.KeyState_KEY_STATE_ACTIVE {
		t.Fatalf("after the activation time: %v", states)
	}
	out, err = c.Issue(ctx, holderRequest(t, "holder-p2", ProfileSign))
	if err != nil {
		t.Fatal(err)
	}
	if g := out.Certificates[0].IssuerGeneration; g != 2 {
		t.Fatalf("issued by generation %d after the activation, want 2", g)
	}
	activations := 0
	if err := c.store.AuditRecords(func(r *storev1.AuditRecord) error {
		if r.Action == "issuer.activate" {
			activations++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if activations != 1 {
		t.Errorf("%d issuer.activate audit records, want 1", activations)
	}
	// A restarted CA finds it active.
	c.restart(t)
	t.Cleanup(c.CA.Close)
	if a := c.gens.Load().active[ProfileSign]; a == nil || a.rec.Generation != 2 {
		t.Errorf("after a restart the active SIGN generation is not 2")
	}
}

// After an issuer compromise (R-K2) a rotation resumes issuance, without
// link certificates: the compromised key certifies nothing more.
func TestRotateAfterCompromise(t *testing.T) {
	c := newTestCA(t, caOptions{})
	c.setDate(t, "2027-01-05")
	if _, err := c.store.CompromiseIssuer(ProfileSign, 1, c.clock, c.clock.Add(-time.Hour), "operator"); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := c.Issue(context.Background(), request(t, ProfileSign))
	refusal{KindPrecondition, "profiles[0].profile", "R-K2", "compromised"}.check(t, err)
	key, err := c.Rotate(context.Background(), ProfileSign, time.Time{}, approval)
	if err != nil {
		t.Fatal(err)
	}
	if len(key.LinkNewWithOldDer) != 0 || len(key.LinkOldWithNewDer) != 0 {
		t.Error("the compromised generation signed link certificates")
	}
	out, err := c.Issue(context.Background(), request(t, ProfileSign))
	if err != nil {
		t.Fatalf("issuance after the rotation: %v", err)
	}
	if g := out.Certificates[0].IssuerGeneration; g != 2 {
		t.Errorf("issued by generation %d, want 2", g)
	}
	// The compromised generation still signs its CRLs.
	if _, _, err := c.IssuerSigner(ProfileSign, 1); err != nil {
		t.Errorf("the compromised generation no longer signs its CRLs: %v", err)
	}
	c.restart(t)
	t.Cleanup(c.CA.Close)
}

// Retirement waits for the generation's last certificate to expire (pinned
// clock before and after), is refused for the active generation, and then
// the generation signs nothing; destruction removes its key from the HSM.
func TestRetireAndDestroy(t *testing.T) {
	c := newTestCA(t, caOptions{})
	ctx := context.Background()
	old := c.mustIssue(t, ceremonyDay, false, request(t, ProfileSign))
	c.setDate(t, "2027-01-05")
	refusal{KindPrecondition, "generation", "R-K1", "sign-g1 is the active generation"}.check(t, c.CheckRetire(ProfileSign, 1))
	if _, err := c.Rotate(ctx, ProfileSign, time.Time{}, approval); err != nil {
		t.Fatal(err)
	}
	expiry := old.Certificates[0].ExpiryDate
	err := c.Retire(ctx, ProfileSign, 1, approval)
	refusal{KindPrecondition, "generation", "R-K1", "sign-g1 has 1 unexpired certificates, the last expiring on " + expiry}.check(t, err)
	refusal{KindPrecondition, "generation", "R-K1", "sign-g2 is the active generation"}.check(t, c.CheckRetire(ProfileSign, 2))
	refusal{KindNotFound, "generation", "R-K1", "no sign-g7"}.check(t, c.CheckRetire(ProfileSign, 7))
	refusal{KindPrecondition, "generation", "R-K1", "only a retired or compromised"}.check(t, c.CheckDestroy(ProfileSign, 1))

	// The last second of its last certificate: still refused.
	c.clock = parsed(t, old.Certificates[0]).NotAfter
	refusal{KindPrecondition, "generation", "R-K1", "1 unexpired"}.check(t, c.Retire(ctx, ProfileSign, 1, approval))
	c.clock = c.clock.Add(time.Second)
	if err := c.Retire(ctx, ProfileSign, 1, approval); err != nil {
		t.Fatalf("retire after the last expiry: %v", err)
	}
	if _, _, err := c.IssuerSigner(ProfileSign, 1); !errors.Is(err, ErrIssuerNotSigning) || !strings.Contains(err.Error(), "sign-g1 is RETIRED") {
		t.Errorf("IssuerSigner of a retired generation: %v", err)
	}
	refusal{KindPrecondition, "generation", "R-K1", "already RETIRED"}.check(t, c.CheckRetire(ProfileSign, 1))

	tok, _ := issuerToken(t)
	g1, err := c.storedGeneration(ProfileSign, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !hasKey(t, tok, g1.KeyLabel, g1.KeyId) {
		t.Fatal("the retired key is not in the token")
	}
	if err := c.Destroy(ctx, ProfileSign, 1, approval); err != nil {
		t.Fatal(err)
	}
	if hasKey(t, tok, g1.KeyLabel, g1.KeyId) {
		t.Error("the destroyed key is still in the token")
	}
	if _, _, err := c.IssuerSigner(ProfileSign, 1); !errors.Is(err, ErrIssuerNotSigning) || !strings.Contains(err.Error(), "DESTROYED") {
		t.Errorf("IssuerSigner of a destroyed generation: %v", err)
	}
	refusal{KindPrecondition, "generation", "R-K1", "is DESTROYED"}.check(t, c.CheckDestroy(ProfileSign, 1))
	// The generation's other keys are untouched: the active one still issues.
	if _, err := c.Issue(ctx, holderRequest(t, "holder-2", ProfileSign)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.store.VerifyAudit(); err != nil {
		t.Error(err)
	}
}

func hasKey(t *testing.T, tok *hsm.Token, label string, id []byte) bool {
	t.Helper()
	keys, err := tok.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Label == label && bytes.Equal(k.ID, id) {
			return true
		}
	}
	return false
}
