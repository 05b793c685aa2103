package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
	"google.golang.org/protobuf/proto"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	auditlog "github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// seedCount is how many SIGN certificates TestCompromiseKilledHalfWay's
// generation holds (issue 11, "done when" 4).
const seedCount = 100_000

// TestCompromiseKilledHalfWay: issue 11 "done when" 4. A compromise of a
// generation with 100,000 certificates, approved by two operators, is
// interrupted by SIGKILL of the real shomei-ca half way; the CA started
// again finishes it by itself. Then every certificate is revoked with
// cACompromise exactly once (one status change and one audit record each),
// the CRL lists each of them once, and OCSP agrees on a sample.
//
// Issuing 100,000 certificates through the API would take many minutes
// (an RSA signature in SoftHSM each), so a few are issued for real and the
// rest are seeded into the store, CA stopped, through the store's own
// Reserve and Complete: each a copy of a real certificate of the
// generation with its own serial (same length, at the same place in the
// DER, so its signature no longer verifies) and its own holder and key
// hash. Revocation, CRLs and OCSP read only the records, which are those
// of real certificates.
func TestCompromiseKilledHalfWay(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 certificates: not in -short")
	}
	dir := t.TempDir()
	conf, alice, bob := writeOperatorsConfig(t, dir, "e2e-compromise-big")
	p := startCA(t, conf)
	ctx := context.Background()
	cl := cav1.NewCertificateAuthorityClient(testenv.Dial(t, p.grpc, operatorsMunicipalToken))
	var real []*cav1.Certificate
	for i := range 3 {
		out, err := cl.Issue(ctx, &cav1.IssueRequest{Municipality: kiyose, Holder: holder(fmt.Sprintf("KB-%d", i)),
			Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
			Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_SIGN, Csr: csr(t, rsaKey(t))}}})
		if err != nil {
			t.Fatal(err)
		}
		real = append(real, out.Certificates[0])
	}
	issuerCert := fetchIssuer(t, p, "shomei-sign-g1")
	p.stop(t)

	dbPath := filepath.Join(dir, "shomei.db")
	seedCertificates(t, conf, dbPath, real[0].Serial, seedCount)
	total := uint64(seedCount + len(real))

	p = startCA(t, conf)
	id := proposeCompromise(t, conf, p.grpc, alice)
	if out, err := shomeictl(conf, "approvals", "approve", id, "--ca", p.grpc, "--token-file", bob); err != nil {
		t.Fatalf("bob approves: %v\n%s", err, out)
	}
	// Follow it and kill the CA once half is done.
	last := watchUntil(t, p, id, func(pr *opsv1.Proposal) bool { return pr.Total > 0 && pr.Done >= pr.Total/2 })
	p.Kill()
	if last.State != opsv1.ProposalState_PROPOSAL_STATE_RUNNING || last.Done >= total || last.Total != total {
		t.Fatalf("at the kill: %s %d of %d; want RUNNING, half of %d done", last.State, last.Done, last.Total, total)
	}
	half := countRevoked(t, dbPath)
	if half == 0 || half >= total {
		t.Fatalf("after the kill %d of %d are revoked; want the compromise interrupted half way", half, total)
	}
	t.Logf("killed with %d of %d revoked", half, total)

	p = startCA(t, conf)
	done := watchUntil(t, p, id, func(*opsv1.Proposal) bool { return false })
	if done.State != opsv1.ProposalState_PROPOSAL_STATE_EXECUTED || done.Done != total {
		t.Fatalf("after the restart: %v", done)
	}
	checkCRL(t, p, issuerCert, total)
	checkOCSPSample(t, p, issuerCert, real)
	p.stop(t)
	checkRevokedOnce(t, dbPath, total)
}

// seedCertificates adds n ISSUED SIGN certificates of generation 1 to the
// store at path, each a copy of the certificate template with its own
// serial, holder and key hash, through Reserve and Complete.
func seedCertificates(t *testing.T, conf, path, templateSerial string, n int) {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The log is sealed by the HSM's witness at the CA's stop: it is
	// opened for writing through the HSM, as shomeictl does.
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.OpenHSM()
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	key, err := auditlog.Key(context.Background(), tok, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := auditlog.NewCheckpointer(auditlog.CheckpointerConfig{Store: st, Signer: key, Witness: tok})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cp.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}()
	sn, _ := new(big.Int).SetString(templateSerial, 16)
	tmpl, err := st.Certificate(sn.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// The template's issuance audit record, copied for each seeded
	// certificate: the CA checks at start that the audit log explains
	// every certificate (R-K3).
	var issued *storev1.AuditRecord
	if err := st.AuditRecords(func(r *storev1.AuditRecord) error {
		if r.Action == "certificate.issue" && len(r.Fields) > 0 && r.Fields[0].Key == "serial" && r.Fields[0].Value == templateSerial {
			issued = r
		}
		return nil
	}); err != nil || issued == nil {
		t.Fatalf("the template's issuance audit record: %v", err)
	}
	auditOf := func(serial []byte, holderID string) *storev1.AuditRecord {
		r := &storev1.AuditRecord{Time: issued.Time, Actor: issued.Actor, Action: issued.Action}
		for _, f := range issued.Fields {
			f = proto.CloneOf(f)
			switch f.Key {
			case "serial":
				f.Value = new(big.Int).SetBytes(serial).Text(16)
			case "holder_id":
				f.Value = holderID
			}
			r.Fields = append(r.Fields, f)
		}
		return r
	}
	// The serial's place in the DER and in the TBS: the first occurrence
	// of INTEGER(serial).
	enc := append([]byte{0x02, byte(len(tmpl.Serial))}, tmpl.Serial...)
	inDER, inTBS := bytes.Index(tmpl.Der, enc)+2, bytes.Index(tmpl.TbsDer, enc)+2
	if inDER < 2 || inTBS < 2 || len(tmpl.Serial) < 8 {
		t.Fatalf("the template's serial %x is not where expected", tmpl.Serial)
	}
	serialOf := func(i int) []byte {
		s := bytes.Clone(tmpl.Serial)
		binary.BigEndian.PutUint32(s[len(s)-4:], uint32(i)^0x5a5a0000)
		s[len(s)-5] ^= 0xa5
		return s
	}
	ders := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				serial := serialOf(i)
				rec := proto.CloneOf(tmpl)
				rec.Serial, rec.HolderId, rec.State, rec.Der = serial, fmt.Sprintf("seed-%06d", i), storev1.CertState_CERT_STATE_PENDING, nil
				rec.TbsDer = bytes.Clone(tmpl.TbsDer)
				copy(rec.TbsDer[inTBS:], serial)
				key := sha256.Sum256(serial)
				rec.PublicKeySha256 = key[:]
				der := bytes.Clone(tmpl.Der)
				copy(der[inDER:], serial)
				ders[i] = der
				// All in the template's CRL partition: 100,003 certificates,
				// more than a shard of the default size takes (R-R5), as a
				// partition of a store from before shards may hold.
				if err := st.Reserve(store.Reservation{Certs: []*storev1.Certificate{rec}, Now: tmpl.CreatedAt.AsTime(),
					CRLShardSize: store.MaxCRLShardSize}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	for from := 0; from < n; from += 5000 {
		c := store.Completion{DER: map[string][]byte{}, Now: tmpl.CreatedAt.AsTime()}
		for i := from; i < min(n, from+5000); i++ {
			c.DER[string(serialOf(i))] = ders[i]
			c.Audit = append(c.Audit, auditOf(serialOf(i), fmt.Sprintf("seed-%06d", i)))
		}
		if err := st.Complete(c); err != nil {
			t.Fatal(err)
		}
	}
}

// watchUntil follows proposal id on p (as bob) until stop says so or it is
// decided, and returns the last state seen.
func watchUntil(t *testing.T, p *caProc, id string, stop func(*opsv1.Proposal) bool) *opsv1.Proposal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	w, err := opsv1.NewOperationsClient(testenv.Dial(t, p.grpc, operatorsBobToken)).WatchProposal(ctx, &opsv1.WatchProposalRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	var last *opsv1.Proposal
	for {
		m, err := w.Recv()
		if err == io.EOF {
			return last
		}
		if err != nil {
			t.Fatalf("watch: %v (last %v)", err, last)
		}
		last = m.Proposal
		if stop(last) {
			return last
		}
	}
}

// countRevoked counts the revoked certificates in the store at path.
func countRevoked(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.MarkCompromised(storev1.Profile_PROFILE_SIGN, 1, time.Now(), time.Now(), "test", nil)
	if err != nil || n.Marked {
		t.Fatalf("the generation: %+v, %v; want marked compromised before the kill", n, err)
	}
	return n.Revoked
}

// checkCRL fetches sign-g1's CRL until it lists total entries and checks
// it: signed by the issuer, each serial once, each cACompromise.
func checkCRL(t *testing.T, p *caProc, issuerCert *x509.Certificate, total uint64) {
	t.Helper()
	var crl *x509.RevocationList
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + p.http + "/crl/sign-g1-13221.crl")
		if err != nil {
			t.Fatal(err)
		}
		der, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			if crl, err = x509.ParseRevocationList(der); err != nil {
				t.Fatal(err)
			}
			if uint64(len(crl.RevokedCertificateEntries)) >= total {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CRL does not list the %d certificates (%s)", total, resp.Status)
		}
	}
	if err := crl.CheckSignatureFrom(issuerCert); err != nil {
		t.Errorf("CRL signature: %v", err)
	}
	seen := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		if seen[e.SerialNumber.String()] || e.ReasonCode != ocsp.CACompromise {
			t.Fatalf("CRL entry %x: listed twice %t, reason %d", e.SerialNumber, seen[e.SerialNumber.String()], e.ReasonCode)
		}
		seen[e.SerialNumber.String()] = true
	}
	if uint64(len(seen)) != total {
		t.Errorf("CRL lists %d certificates, want %d", len(seen), total)
	}
}

// checkOCSPSample asks OCSP about the real certificates and a sample of the
// seeded serials: revoked, cACompromise.
func checkOCSPSample(t *testing.T, p *caProc, issuerCert *x509.Certificate, real []*cav1.Certificate) {
	t.Helper()
	var serials []*big.Int
	for _, c := range real {
		sn, _ := new(big.Int).SetString(c.Serial, 16)
		serials = append(serials, sn)
	}
	base, _ := new(big.Int).SetString(real[0].Serial, 16)
	for i := 0; i < seedCount; i += seedCount / 20 {
		s := base.Bytes()
		binary.BigEndian.PutUint32(s[len(s)-4:], uint32(i)^0x5a5a0000)
		s[len(s)-5] ^= 0xa5
		serials = append(serials, new(big.Int).SetBytes(s))
	}
	keyHash := sha256.Sum256(issuerKeyBits(t, issuerCert))
	nameHash := sha256.Sum256(issuerCert.RawSubject)
	for _, sn := range serials {
		req, err := (&ocsp.Request{HashAlgorithm: crypto.SHA256, IssuerNameHash: nameHash[:], IssuerKeyHash: keyHash[:], SerialNumber: sn}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post("http://"+p.http+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r, err := ocsp.ParseResponse(body, issuerCert)
		if err != nil {
			t.Fatalf("OCSP %x: %v", sn, err)
		}
		if r.Status != ocsp.Revoked || r.RevocationReason != ocsp.CACompromise {
			t.Errorf("OCSP %x: status %d reason %d; want revoked cACompromise", sn, r.Status, r.RevocationReason)
		}
	}
}

// issuerKeyBits is the issuer's subjectPublicKey BIT STRING contents, as
// an OCSP CertID hashes it.
func issuerKeyBits(t *testing.T, cert *x509.Certificate) []byte {
	t.Helper()
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	return spki.PublicKey.RightAlign()
}

// checkRevokedOnce checks the store at path: every SIGN certificate of
// generation 1 is revoked with cACompromise, by one status change and one
// audit record each, and the audit chain verifies.
func checkRevokedOnce(t *testing.T, path string, total uint64) {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var certs uint64
	err = st.ForEachCertificate(func(rec *storev1.Certificate) error {
		if rec.Profile != storev1.Profile_PROFILE_SIGN || rec.IssuerGeneration != 1 {
			return nil
		}
		certs++
		if rec.Revocation == nil || rec.Revocation.Reason != store.ReasonCACompromise {
			return fmt.Errorf("%x: revocation %v, want cACompromise", rec.Serial, rec.Revocation)
		}
		return nil
	})
	if err != nil || certs != total {
		t.Fatalf("%d SIGN g1 certificates, %v; want %d, all revoked cACompromise", certs, err, total)
	}
	changes := map[string]int{}
	if err := st.Changes(0, func(ch *storev1.StatusChange) error {
		if ch.Kind == storev1.ChangeKind_CHANGE_KIND_REVOKED {
			changes[string(ch.Serial)]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	audits := map[string]int{}
	if err := st.AuditRecords(func(r *storev1.AuditRecord) error {
		if r.Action == "certificate.revoke" {
			audits[r.Fields[0].Value]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if uint64(len(changes)) != total || uint64(len(audits)) != total {
		t.Errorf("%d serials with a revocation change, %d with a revocation audit record; want %d", len(changes), len(audits), total)
	}
	for serial, n := range changes {
		if n != 1 || audits[fmt.Sprintf("%x", serial)] != 1 {
			t.Fatalf("%x: %d revocation changes, %d audit records; want one of each", serial, n, audits[fmt.Sprintf("%x", serial)])
		}
	}
	if _, err := st.VerifyAudit(); err != nil {
		t.Errorf("audit: %v", err)
	}
}
