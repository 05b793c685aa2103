package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// TestCompromiseResumable: an issuer compromise (R-K2) runs in batches; the
// store is closed half way (the CA stopped or was killed between two
// transactions) and the walk started again from the beginning on the
// reopened store finishes it. Every certificate of the generation ends
// revoked with cACompromise exactly once (one REVOKED status change, one
// audit record each); one revoked before by an event keeps that first
// revocation; the other profile is untouched; the audit chain verifies.
func TestCompromiseResumable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s, err := be.open(t, Options{Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		initTest(t, s)
		const n = 23
		var signs, auths [][]byte
		for i := range n {
			a, b := pending(fmt.Sprintf("h-%d", i), sign), pending(fmt.Sprintf("h-%d", i), auth)
			a.CrlPartition, b.CrlPartition = "sign-g1-13221", "auth-g1-13221"
			issue(t, s, Reservation{Certs: []*storev1.Certificate{a, b}, Now: t0})
			signs, auths = append(signs, a.Serial), append(auths, b.Serial)
		}
		at := t0.Add(time.Hour)
		if _, err := s.Revoke(RevokeRequest{Serials: [][]byte{signs[5]}, Reason: ReasonKeyCompromise, InvalidityDate: at, Now: at,
			Actor: "test", Cause: "counter request"}); err != nil {
			t.Fatal(err)
		}
		since, err := s.Revision()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeCompromised(sign, 1, nil, 5, at, at, "op"); !errors.Is(err, ErrNotCompromised) {
			t.Fatalf("RevokeCompromised before the mark: %v, want ErrNotCompromised", err)
		}
		count, err := s.MarkCompromised(sign, 1, at, t0, "op", []*storev1.AuditField{{Key: "proposal", Value: "p1"}})
		if err != nil || !count.Marked || count.Total != n || count.Revoked != 1 {
			t.Fatalf("MarkCompromised = %+v, %v; want marked, %d total, 1 revoked", count, err, n)
		}
		// Nothing more is issued with it (R-K2), whatever a CA holds in memory.
		late := pending("h-late", sign)
		if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{late}, Now: at}); !errors.Is(err, ErrIssuerCompromised) {
			t.Fatalf("Reserve after the mark: %v, want ErrIssuerCompromised", err)
		}
		revoked := 0
		var after []byte
		for range 2 {
			b, err := s.RevokeCompromised(sign, 1, after, 5, at, t0, "op")
			if err != nil || b.Done {
				t.Fatalf("batch: %+v, %v", b, err)
			}
			revoked += b.Revoked
			after = b.Next
		}
		if revoked < 9 {
			t.Fatalf("two batches of 5 revoked %d", revoked)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s, err = be.open(t, Options{Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		count, err = s.MarkCompromised(sign, 1, at, t0, "op", nil)
		if err != nil || count.Marked || count.Total != n || count.Revoked != uint64(revoked+1) {
			t.Fatalf("MarkCompromised again = %+v, %v; want not marked again, %d of %d revoked", count, err, revoked+1, n)
		}
		res, err := s.CompromiseIssuer(sign, 1, at, t0, "op")
		if err != nil || res.Revoked != n-1-revoked || res.AlreadyRevoked != revoked+1 {
			t.Fatalf("finishing = %+v, %v; want %d revoked now, %d before", res, err, n-1-revoked, revoked+1)
		}

		changes := map[string]int{}
		if err := s.Changes(since, func(ch *storev1.StatusChange) error {
			if ch.Kind == storev1.ChangeKind_CHANGE_KIND_REVOKED {
				changes[string(ch.Serial)]++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		audits := map[string]int{}
		if err := s.AuditRecords(func(r *storev1.AuditRecord) error {
			if r.Action == "certificate.revoke" && r.Seq > 0 {
				audits[r.Fields[0].Value]++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for i, serial := range signs {
			rec, err := s.Certificate(serial)
			if err != nil {
				t.Fatal(err)
			}
			if i == 5 {
				if rec.Revocation.Reason != ReasonKeyCompromise || changes[string(serial)] != 0 {
					t.Errorf("the certificate revoked before: %v, %d changes; want its first revocation kept", rec.Revocation, changes[string(serial)])
				}
				continue
			}
			want := &storev1.Revocation{RevokedAt: timestamppb.New(at), Reason: ReasonCACompromise, InvalidityDate: timestamppb.New(t0), Cause: CompromiseCause}
			if rec.Revocation.String() != want.String() || changes[string(serial)] != 1 || audits[fmt.Sprintf("%x", serial)] != 1 {
				t.Errorf("sign %x: %v, %d changes, %d audit records; want %v once", serial, rec.Revocation, changes[string(serial)], audits[fmt.Sprintf("%x", serial)], want)
			}
		}
		for _, serial := range auths {
			if rec, err := s.Certificate(serial); err != nil || rec.Revocation != nil {
				t.Errorf("auth %x: %v, %v; want untouched", serial, rec.GetRevocation(), err)
			}
		}
		if _, err := s.VerifyAudit(); err != nil {
			t.Errorf("audit: %v", err)
		}
	})
}
