package store

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// TestExpiryBoundary: every decision of the store about expiry agrees with
// validity.Live. A certificate whose notAfter is 2031-11-21T14:59:59Z
// (23:59:59 JST) still blocks a new issuance (R-A4), can be renewed (R-V4),
// is revoked by a holder's event (R-R1) and stays on its CRL (R-R5) at
// 14:59:59 and 14:59:59.999999; from 15:00:00 (00:00:00 JST) it does none
// of that.
func TestExpiryBoundary(t *testing.T) {
	notAfter := time.Date(2031, 11, 21, 14, 59, 59, 0, time.UTC)
	cases := []struct {
		name string
		now  time.Time
		live bool
	}{
		{"23:59:58 JST", notAfter.Add(-time.Second), true},
		{"23:59:59 JST", notAfter, true},
		{"23:59:59.999999 JST", notAfter.Add(999999 * time.Microsecond), true},
		{"00:00:00 JST the next day", notAfter.Add(time.Second), false},
	}
	// live issues SIGN to a new holder, expiring at notAfter, in its own
	// CRL partition.
	live := func(t *testing.T, s *Store, holder string) *storev1.Certificate {
		t.Helper()
		rec := pending(holder, sign)
		rec.NotAfter, rec.CrlPartition = timestamppb.New(notAfter), "sign-1-"+holder
		issue(t, s, Reservation{Certs: []*storev1.Certificate{rec}, Now: t0})
		return rec
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := openTemp(t, be.fresh(t))

				live(t, s, "h-issue")
				err := s.Reserve(Reservation{Certs: []*storev1.Certificate{pending("h-issue", sign)}, Now: c.now})
				if c.live && !errors.Is(err, ErrDoubleIssuance) {
					t.Errorf("a new issuance while the certificate is live: %v, want %v (R-A4)", err, ErrDoubleIssuance)
				}
				if !c.live && err != nil {
					t.Errorf("a new issuance after expiry: %v", err)
				}

				old := live(t, s, "h-renew")
				err = s.Reserve(Reservation{Certs: []*storev1.Certificate{pending("h-renew", sign)}, Now: c.now,
					Supersede: map[storev1.Profile][]byte{sign: old.Serial}})
				if c.live && err != nil {
					t.Errorf("renewing the live certificate: %v (R-V4)", err)
				}
				if !c.live && !errors.Is(err, ErrNotRenewable) {
					t.Errorf("renewing the expired certificate: %v, want %v", err, ErrNotRenewable)
				}

				old = live(t, s, "h-death")
				res, err := s.Revoke(RevokeRequest{Municipality: "13221", EventID: "death", HolderID: "h-death",
					Profiles: []storev1.Profile{sign, auth}, Reason: ReasonCessationOfOperation, InvalidityDate: c.now, Now: c.now,
					Actor: "test", Cause: "event death"})
				if err != nil {
					t.Fatal(err)
				}
				if got := len(res.Revoked); (got == 1) != c.live || got > 1 {
					t.Errorf("a death revoked %d certificates; want the certificate revoked only while it is live (%v)", got, c.live)
				}

				// A counter request revokes whatever it names; the CRL lists
				// the revocation until the certificate expires.
				listed := 0
				if _, err := s.Revoke(RevokeRequest{Serials: [][]byte{old.Serial}, Reason: ReasonCessationOfOperation,
					InvalidityDate: c.now, Now: c.now, Actor: "test", Cause: "counter request", Municipality: "13221"}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.PartitionEntries(old.CrlPartition, c.now, func(*storev1.Certificate) error { listed++; return nil }); err != nil {
					t.Fatal(err)
				}
				if (listed == 1) != c.live || listed > 1 {
					t.Errorf("the CRL lists %d entries; want the revocation listed only while the certificate is live (%v)", listed, c.live)
				}
			})
		}
	})
}
