package store

import (
	"errors"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// TestEventReplayDigest: an event id is a replay only with the same payload
// digest; an event recorded before digests were kept is matched by its
// audit record (R-R1).
func TestEventReplayDigest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		event := func(id, holder, kind string, digest []byte) RevokeRequest {
			return RevokeRequest{Municipality: "13221", EventID: id, HolderID: holder, Reason: ReasonCessationOfOperation,
				InvalidityDate: t0, Now: t0, Actor: "shomei-ca", Cause: "event " + id, PayloadSHA256: digest,
				Audit: []*storev1.AuditRecord{testAudit("event.report", "event_id", id, "municipality", "13221", "holder_id", holder,
					"kind", kind, "cause", "0", "effective", t0.Format(time.RFC3339))}}
		}
		if _, err := s.Revoke(event("e1", "H-1", "3", []byte("digest-1"))); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Revoke(event("e1", "H-1", "3", []byte("digest-1"))); err != nil || !r.Replayed {
			t.Fatalf("the same digest: %v %v, want a replay", r, err)
		}
		if _, err := s.Revoke(event("e1", "H-2", "3", []byte("digest-2"))); !errors.Is(err, ErrEventConflict) {
			t.Fatalf("another digest: %v, want ErrEventConflict", err)
		}

		// Recorded before digests were kept: matched by its audit record.
		if _, err := s.Revoke(event("old", "H-1", "3", nil)); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Revoke(event("old", "H-1", "3", []byte("digest-now"))); err != nil || !r.Replayed {
			t.Fatalf("a legacy event with matching audit fields: %v %v, want a replay", r, err)
		}
		for name, req := range map[string]RevokeRequest{
			"another holder": event("old", "H-2", "3", []byte("digest-now")),
			"another kind":   event("old", "H-1", "4", []byte("digest-now")),
			"no audit record to compare": func() RevokeRequest {
				r := event("old", "H-1", "3", []byte("digest-now"))
				r.Audit = nil
				return r
			}(),
		} {
			if _, err := s.Revoke(req); !errors.Is(err, ErrEventConflict) {
				t.Errorf("%s: %v, want ErrEventConflict", name, err)
			}
		}

		// An unknown holder is refused when asked, and nothing is recorded.
		req := event("e9", "H-NOBODY", "3", []byte("digest-9"))
		req.KnownHolder = true
		if _, err := s.Revoke(req); !errors.Is(err, ErrUnknownHolder) {
			t.Fatalf("unknown holder: %v, want ErrUnknownHolder", err)
		}
		req.HolderID, req.KnownHolder, req.PayloadSHA256 = "H-1", false, []byte("digest-10")
		if r, err := s.Revoke(req); err != nil || r.Replayed {
			t.Fatalf("the id of the refused event, reused: %v %v; want it applied (the refusal recorded nothing)", r, err)
		}
	})
}

// TestRevokeInvalidityNotBeforeNotBefore: an effective time before a
// certificate's notBefore spares it, unless the event ends every
// certificate (LaterIssued: a death reported after the fact); then, as for
// a counter revocation dated a little before issuance, the invalidityDate
// is the notBefore, never earlier (R-R3).
func TestRevokeInvalidityNotBeforeNotBefore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		sign, auth := pending("late", storev1.Profile_PROFILE_SIGN), pending("late", storev1.Profile_PROFILE_AUTH)
		issue(t, s, Reservation{Certs: []*storev1.Certificate{sign, auth}, Now: t0})
		before := t0.Add(-time.Hour)
		base := RevokeRequest{Municipality: "13221", HolderID: "late", Profiles: []storev1.Profile{storev1.Profile_PROFILE_SIGN},
			Reason: ReasonAffiliationChanged, InvalidityDate: before, Now: t0.Add(time.Hour), Actor: "shomei-ca", Cause: "test"}
		if r, err := s.Revoke(base); err != nil || len(r.Revoked) != 0 {
			t.Fatalf("a move effective before issuance: %v %v; want SIGN spared", r, err)
		}
		death := base
		death.EventID, death.Profiles, death.Reason, death.LaterIssued = "death", []storev1.Profile{storev1.Profile_PROFILE_SIGN, storev1.Profile_PROFILE_AUTH},
			ReasonCessationOfOperation, true
		r, err := s.Revoke(death)
		if err != nil || len(r.Revoked) != 2 {
			t.Fatalf("a death effective before issuance: %v %v; want both revoked", r, err)
		}
		for _, e := range r.Revoked {
			if got := e.Revocation.InvalidityDate.AsTime(); !got.Equal(t0) {
				t.Errorf("invalidityDate %v, want the notBefore %v", got, t0)
			}
		}
	})
}

// TestAttackLegacyEventTargets: an event recorded before payload digests
// were kept is compared by its audit record, which has the holder, kind,
// cause and effective time but not the profiles or the serial. Reusing its
// id with the same four and other targets (stop using AUTH after SIGN, a
// record error naming another serial) was taken for a replay and revoked
// nothing; now the first result's targets must be among the request's.
func TestAttackLegacyEventTargets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		sign, auth := pending("H-1", storev1.Profile_PROFILE_SIGN), pending("H-1", storev1.Profile_PROFILE_AUTH)
		issue(t, s, Reservation{Certs: []*storev1.Certificate{sign, auth}, Now: t0})
		event := func(id, kind string, digest []byte, profiles []storev1.Profile, serials ...[]byte) RevokeRequest {
			return RevokeRequest{Municipality: "13221", EventID: id, HolderID: "H-1", Reason: ReasonCessationOfOperation,
				Profiles: profiles, Serials: serials, InvalidityDate: t0, Now: t0.Add(time.Hour), Actor: "shomei-ca", Cause: "event " + id,
				PayloadSHA256: digest,
				Audit: []*storev1.AuditRecord{testAudit("event.report", "event_id", id, "municipality", "13221", "holder_id", "H-1",
					"kind", kind, "cause", "0", "effective", t0.Format(time.RFC3339))}}
		}
		signOnly, authOnly := []storev1.Profile{storev1.Profile_PROFILE_SIGN}, []storev1.Profile{storev1.Profile_PROFILE_AUTH}
		// Legacy (no digest): stop using SIGN; a record error naming AUTH.
		if r, err := s.Revoke(event("stop", "6", nil, signOnly)); err != nil || len(r.Revoked) != 1 {
			t.Fatalf("legacy stop-using SIGN: %v %v", r, err)
		}
		if _, err := s.Revoke(event("fix", "7", nil, nil, auth.Serial)); err != nil {
			t.Fatalf("legacy record error: %v", err)
		}
		if r, err := s.Revoke(event("stop", "6", []byte("d"), signOnly)); err != nil || !r.Replayed {
			t.Fatalf("a true replay of the legacy stop-using: %v %v, want a replay", r, err)
		}
		if r, err := s.Revoke(event("fix", "7", []byte("d"), nil, auth.Serial)); err != nil || !r.Replayed {
			t.Fatalf("a true replay of the legacy record error: %v %v, want a replay", r, err)
		}
		if _, err := s.Revoke(event("stop", "6", []byte("d"), authOnly)); !errors.Is(err, ErrEventConflict) {
			t.Errorf("the legacy stop-using id reused for AUTH: %v, want ErrEventConflict", err)
		}
		if _, err := s.Revoke(event("fix", "7", []byte("d"), nil, sign.Serial)); !errors.Is(err, ErrEventConflict) {
			t.Errorf("the legacy record-error id reused for another serial: %v, want ErrEventConflict", err)
		}
	})
}
