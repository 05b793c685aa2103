package ocsp_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ocsp"
)

// TestRecordedStatus: the one conversion of a recorded revocation, in the
// CA's store shape and in the replication stream's, to an OCSP status
// (R-R2, R-R3, R-R6).
func TestRecordedStatus(t *testing.T) {
	revokedAt := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	effective := revokedAt.Add(-time.Hour)
	revoked := ocsp.Status{Status: ocsp.Revoked, RevokedAt: revokedAt, Reason: 5, InvalidityDate: effective}
	noInvalidity := ocsp.Status{Status: ocsp.Revoked, RevokedAt: revokedAt, Reason: 4}
	cases := []struct {
		name   string
		issued bool
		rev    ocsp.Revocation
		want   ocsp.Status
	}{
		{"never issued", false, nil, ocsp.Status{Status: ocsp.Unknown}},
		{"never delivered, though revoked", false,
			&storev1.Revocation{RevokedAt: timestamppb.New(revokedAt), Reason: 2}, ocsp.Status{Status: ocsp.Unknown}},
		{"issued, no revocation", true, nil, ocsp.Status{Status: ocsp.Good}},
		{"issued, store's nil revocation", true, (*storev1.Revocation)(nil), ocsp.Status{Status: ocsp.Good}},
		{"issued, stream's nil revocation", true, (*cav1.StatusRevocation)(nil), ocsp.Status{Status: ocsp.Good}},
		{"revoked, in the store", true, &storev1.Revocation{RevokedAt: timestamppb.New(revokedAt), Reason: 5,
			InvalidityDate: timestamppb.New(effective), Cause: "event"}, revoked},
		{"revoked, on the stream", true, &cav1.StatusRevocation{RevokedAt: timestamppb.New(revokedAt), Reason: 5,
			InvalidityDate: timestamppb.New(effective)}, revoked},
		{"revoked without invalidityDate", true, &cav1.StatusRevocation{RevokedAt: timestamppb.New(revokedAt), Reason: 4}, noInvalidity},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ocsp.RecordedStatus(c.issued, c.rev)
			if got.Status != c.want.Status || !got.RevokedAt.Equal(c.want.RevokedAt) || got.Reason != c.want.Reason ||
				!got.InvalidityDate.Equal(c.want.InvalidityDate) || !got.ThisUpdate.IsZero() {
				t.Errorf("RecordedStatus = %+v, want %+v", got, c.want)
			}
		})
	}
}
