package service

import (
	"context"
	"crypto/x509"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ocsp"
	"github.com/shomei-pki/shomei/ocsp/replica"
)

// TestCertificateStatusOnTheWire: what the stream sends of a record is its
// revocation, field for field, for issued certificates only; and a replica
// that applies it answers OCSP exactly as the conversion of the record
// says, so that the CA and its replicas agree (R-R6).
func TestCertificateStatusOnTheWire(t *testing.T) {
	notAfter := timestamppb.New(time.Date(2031, 3, 15, 14, 59, 59, 0, time.UTC))
	revokedAt, effective := timestamppb.New(time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)), timestamppb.New(time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC))
	record := func(serial int64, state storev1.CertState, rev *storev1.Revocation) *storev1.Certificate {
		return &storev1.Certificate{Serial: big.NewInt(serial).Bytes(), Profile: storev1.Profile_PROFILE_SIGN, IssuerGeneration: 1,
			State: state, NotAfter: notAfter, Revocation: rev}
	}
	issued, pending, abandoned := storev1.CertState_CERT_STATE_ISSUED, storev1.CertState_CERT_STATE_PENDING, storev1.CertState_CERT_STATE_ABANDONED
	cases := []struct {
		name string
		rec  *storev1.Certificate
		sent bool
		want ocsp.Status // ThisUpdate aside
	}{
		{"good", record(1, issued, nil), true, ocsp.Status{Status: ocsp.Good}},
		{"revoked", record(2, issued, &storev1.Revocation{RevokedAt: revokedAt, Reason: 5, InvalidityDate: effective, Cause: "event e"}), true,
			ocsp.Status{Status: ocsp.Revoked, RevokedAt: revokedAt.AsTime(), Reason: 5, InvalidityDate: effective.AsTime()}},
		{"revoked without invalidityDate", record(3, issued, &storev1.Revocation{RevokedAt: revokedAt, Reason: 4}), true,
			ocsp.Status{Status: ocsp.Revoked, RevokedAt: revokedAt.AsTime(), Reason: 4}},
		{"pending", record(4, pending, nil), false, ocsp.Status{Status: ocsp.Unknown}},
		{"pending, revoked by an issuer compromise", record(5, pending, &storev1.Revocation{RevokedAt: revokedAt, Reason: 2}), false,
			ocsp.Status{Status: ocsp.Unknown}},
		{"abandoned", record(6, abandoned, nil), false, ocsp.Status{Status: ocsp.Unknown}},
	}

	st, err := replica.Open(filepath.Join(t.TempDir(), "replica.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	issuer := &x509.Certificate{Raw: []byte("sign issuer")}
	src := replica.NewSource(st, map[string]*x509.Certificate{ca.IssuerName(storev1.Profile_PROFILE_SIGN, 1): issuer})
	synced := time.Date(2026, 11, 21, 3, 0, 1, 0, time.UTC)
	// In sync, holding nothing yet.
	if _, err := st.Apply(&cav1.FollowResponse{Revision: 1, SentAt: timestamppb.New(synced)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := certificateStatus(c.rec, revokedAt)
			if ok != c.sent {
				t.Fatalf("sent %v, want %v", ok, c.sent)
			}
			if ok {
				want := &cav1.CertificateStatus{Serial: c.rec.Serial, Issuer: "sign-g1", NotAfter: notAfter, RecordedAt: revokedAt}
				if rv := c.rec.Revocation; rv != nil {
					want.Revocation = &cav1.StatusRevocation{RevokedAt: rv.RevokedAt, Reason: rv.Reason, InvalidityDate: rv.InvalidityDate}
				}
				if want.Issuer != ca.IssuerName(c.rec.Profile, c.rec.IssuerGeneration) {
					t.Fatalf("issuer name %q, want %q", ca.IssuerName(c.rec.Profile, c.rec.IssuerGeneration), want.Issuer)
				}
				if !proto.Equal(got, want) {
					t.Errorf("sent\n %v\nwant\n %v", got, want)
				}
				if _, err := st.Apply(&cav1.FollowResponse{Statuses: []*cav1.CertificateStatus{got}, Revision: 1, SentAt: timestamppb.New(synced)}); err != nil {
					t.Fatal(err)
				}
			}
			answer, err := src.Status(context.Background(), &ocsp.Issuer{Certificate: issuer}, new(big.Int).SetBytes(c.rec.Serial))
			if err != nil {
				t.Fatal(err)
			}
			if answer.Status != c.want.Status || !answer.RevokedAt.Equal(c.want.RevokedAt) || answer.Reason != c.want.Reason ||
				!answer.InvalidityDate.Equal(c.want.InvalidityDate) || !answer.ThisUpdate.Equal(synced) {
				t.Errorf("the replica answers %+v, want %+v as of %v", answer, c.want, synced)
			}
		})
	}
}
