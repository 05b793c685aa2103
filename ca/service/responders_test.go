package service_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/service"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/ocsp"
)

const (
	cityToken    = "kiyose-0123456789abcdef"
	replicaToken = "replica-0123456789abcdef"
)

// TestAttackReplicaForgesResponder: a stolen replica credential offers a
// key made in software (not the replica's enrolled HSM key) to
// CertifyResponder. Before R-R6 enrollment it got a 7-day OCSP-signing
// certificate with id-pkix-ocsp-nocheck, which then signed a "good" for a
// revoked certificate that Go's OCSP parser verified. Now: only enrolled
// keys, for the issuers the replica serves, for at most a day, with a
// record written before the HSM signs; a revoked responder key is never
// certified again; oversized or odd keys are refused before anything else;
// the CA's own local path refuses keys outside its HSM; Follow and
// ListIssuers are scoped to the replica's issuers.
func TestAttackReplicaForgesResponder(t *testing.T) {
	enrolledKey := mustRSA(t)
	pin, err := ocsp.KeyPin(enrolledKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	pinBytes, _ := ocsp.ParseKeyPin(pin)
	authz, err := service.NewTokenAuthorizer([]service.Client{
		{Name: "kiyose", Token: cityToken, Municipalities: []string{kiyose.Code}},
		{Name: "replica1", Token: replicaToken, Replica: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, tokenResponders, options{auth: authz, responders: ca.ResponderPolicy{
		Replicas: map[string]ca.ReplicaEnrollment{"replica1": {Keys: [][sha256.Size]byte{pinBytes}, Issuers: []string{"sign-g1"}}},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	city := cav1.NewCertificateAuthorityClient(testenv.Dial(t, h.addr, cityToken))
	replica := cav1.NewReplicationClient(testenv.Dial(t, h.addr, replicaToken))

	// A certificate that gets revoked, for the forged "good".
	out, err := city.Issue(ctx, request(resident("RESP-1", "1980-04-01"), application(cav1.ApplicantKind_APPLICANT_KIND_SELF, "2035-01-01"),
		sign(holderKeys.csr(t)), auth(holderKeys.csr(t))))
	if err != nil {
		t.Fatal(describe(err))
	}
	victim := out.Certificates[0]
	if _, err := city.Revoke(ctx, &cav1.RevokeRequest{Serial: victim.Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(describe(err))
	}
	auditBefore := auditCount(t, h)

	// The attack: a software key, offered with the replica's token.
	rogue := mustRSA(t)
	_, err = replica.CertifyResponder(ctx, &cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: responderCSR(t, rogue),
		NotAfter: timestamppb.New(h.clock.Now().Add(7 * 24 * time.Hour))})
	if err == nil {
		t.Error("a key nobody enrolled was certified as an OCSP responder")
		forged := forgeGood(t, h, replica, rogue, victim)
		t.Errorf("and it signed a verified %q for revoked certificate %s", forged, victim.Serial)
	} else if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "not enrolled") {
		t.Errorf("an unenrolled key: %v; want FailedPrecondition saying it is not enrolled", err)
	}
	if n := auditCount(t, h); n != auditBefore {
		t.Errorf("a refused certification wrote %d audit records", n-auditBefore)
	}

	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	for name, tc := range map[string]struct {
		req   *cav1.CertifyResponderRequest
		code  codes.Code
		field string
	}{
		"an issuer the replica does not serve": {&cav1.CertifyResponderRequest{Issuer: "auth-g1", Csr: responderCSR(t, enrolledKey)}, codes.PermissionDenied, "issuer"},
		"an ECDSA P-521 key":                   {&cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: responderCSR(t, p521)}, codes.InvalidArgument, "csr"},
		"notBefore a week ahead": {&cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: responderCSR(t, enrolledKey),
			NotBefore: timestamppb.New(h.clock.Now().Add(7 * 24 * time.Hour))}, codes.InvalidArgument, "not_before"},
	} {
		_, err := replica.CertifyResponder(ctx, tc.req)
		fields := violations(err)
		if status.Code(err) != tc.code || len(fields) == 0 || fields[0].Field != tc.field || fields[0].Reason != "R-R6" {
			t.Errorf("%s: %v %v; want %v naming %s (R-R6)", name, status.Code(err), fields, tc.code, tc.field)
		}
	}
	if _, err := cav1.NewReplicationClient(testenv.Dial(t, h.addr, cityToken)).CertifyResponder(ctx,
		&cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: responderCSR(t, enrolledKey)}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a municipal token at CertifyResponder: %v; want PermissionDenied", err)
	}

	// The enrolled key, for its issuer, asking for a week: a day at most.
	got, err := replica.CertifyResponder(ctx, &cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: responderCSR(t, enrolledKey),
		NotAfter: timestamppb.New(h.clock.Now().Add(7 * 24 * time.Hour))})
	if err != nil {
		t.Fatal(describe(err))
	}
	cert, err := x509.ParseCertificate(got.CertificateDer)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(h.issuers[cav1.Profile_PROFILE_SIGN]); err != nil || cert.NotAfter.Sub(h.clock.Now()) > ca.DefaultResponderValidity {
		t.Errorf("responder certificate: %v, notAfter %v (now %v)", err, cert.NotAfter, h.clock.Now())
	}
	var recs []*storev1.ResponderCertificate
	if err := h.store.ResponderCertificates(func(r *storev1.ResponderCertificate) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].State != storev1.CertState_CERT_STATE_ISSUED || recs[0].Replica != "replica1" ||
		new(big.Int).SetBytes(recs[0].Serial).Cmp(cert.SerialNumber) != 0 || !strings.Contains(recs[0].Actor, "replica1") {
		t.Errorf("%d responder records; want the one issued for replica1", len(recs))
	}
	if !auditHas(t, h, "ocsp.responder.certify", "replica:replica1") {
		t.Error("no audit record of the certification naming replica1")
	}

	// Revoked by the operator: never certified again.
	if _, err := h.store.RevokeResponder(recs[0].Serial, h.clock.Now(), 1, "operator:test"); err != nil {
		t.Fatal(err)
	}
	_, err = replica.CertifyResponder(ctx, &cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: responderCSR(t, enrolledKey)})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("re-certifying a revoked responder key: %v; want FailedPrecondition", err)
	}

	// The CA's own path: keys outside its HSM are refused there too.
	_, err = ca.LocalResponderCertifier{CA: h.ca}.CertifyResponder(ctx, "sign-g1", rogue, h.clock.Now(), h.clock.Now().Add(time.Hour))
	if ca.KindOf(err) != ca.KindPermission {
		t.Errorf("the local certifier with a software key: %v; want a permission refusal", err)
	}

	// Scoped to its issuers: ListIssuers and Follow show sign-g1 only.
	list, err := replica.ListIssuers(ctx, &cav1.ListIssuersRequest{})
	if err != nil || len(list.Issuers) != 1 || list.Issuers[0].Name != "sign-g1" {
		t.Errorf("ListIssuers for replica1: %d issuers, %v; want sign-g1 only", len(list.GetIssuers()), err)
	}
	stream, err := replica.Follow(ctx, &cav1.FollowRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range m.Statuses {
			if st.Issuer != "sign-g1" {
				t.Errorf("replica1 was sent a status of %s", st.Issuer)
			}
		}
		if !m.Snapshot {
			break
		}
	}
}

// forgeGood signs, with a responder certificate obtained for key, a "good"
// for the revoked certificate c, and returns the status Go's OCSP parser
// verifies.
func forgeGood(t *testing.T, h *harness, replica cav1.ReplicationClient, key crypto.Signer, c *cav1.Certificate) string {
	t.Helper()
	got, err := replica.CertifyResponder(context.Background(), &cav1.CertifyResponderRequest{Issuer: "sign-g1", Csr: responderCSR(t, key)})
	if err != nil {
		return "nothing: " + err.Error()
	}
	responder, err := x509.ParseCertificate(got.CertificateDer)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Der)
	if err != nil {
		t.Fatal(err)
	}
	iss := h.issuers[cav1.Profile_PROFILE_SIGN]
	der, err := xocsp.CreateResponse(iss, responder, xocsp.Response{Status: xocsp.Good, SerialNumber: leaf.SerialNumber,
		ThisUpdate: h.clock.Now(), NextUpdate: h.clock.Now().Add(time.Hour), Certificate: responder}, key)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := xocsp.ParseResponseForCert(der, leaf, iss)
	if err != nil {
		return "unverified: " + err.Error()
	}
	if resp.Status == xocsp.Good {
		return "good"
	}
	return "not good"
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func responderCSR(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "OCSP Responder"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func auditCount(t *testing.T, h *harness) int {
	t.Helper()
	n := 0
	if err := h.store.AuditRecords(func(*storev1.AuditRecord) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// auditHas says whether an audit record of action names actor.
func auditHas(t *testing.T, h *harness, action, actor string) bool {
	t.Helper()
	found := false
	if err := h.store.AuditRecords(func(r *storev1.AuditRecord) error {
		found = found || (r.Action == action && r.Actor == actor)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return found
}
