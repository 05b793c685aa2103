package ca

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
)

// holderCertificates are the holder's SIGN and AUTH, issued together on
// ceremonyDay by issueBoth.
type holderCertificates struct {
	serial map[Profile]string // hex
	spki   map[Profile][]byte // SHA-256 of each key
}

// issueBoth issues SIGN and AUTH to the holder on ceremonyDay, then moves
// the clock to eventDay.
func issueBoth(t *testing.T, c *testCA) holderCertificates {
	t.Helper()
	req := request(t, ProfileSign, ProfileAuth)
	out := c.mustIssue(t, ceremonyDay, false, req)
	h := holderCertificates{serial: map[Profile]string{}, spki: map[Profile][]byte{}}
	for _, rec := range out.Certificates {
		h.serial[rec.Profile], h.spki[rec.Profile] = serialHex(rec), rec.PublicKeySha256
	}
	c.setDate(t, eventDay)
	return h
}

const (
	eventDay = "2026-12-01"
	// effective is when the events below took effect: an hour before the
	// CA hears of them.
	effective = "2026-12-01T09:00:00+09:00"
)

// revocations returns the reason each of the holder's certificates is
// revoked with, by profile; none for one not revoked.
func revocations(t *testing.T, c *testCA, h holderCertificates) map[Profile]int32 {
	t.Helper()
	out := map[Profile]int32{}
	for p, sn := range h.serial {
		rec, err := c.Certificate(sn)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Revocation != nil {
			out[p] = rec.Revocation.Reason
		}
	}
	return out
}

// The R-R1 table: which certificate each event revokes, with which reason,
// the event's effective time as invalidityDate and the CA's time as
// revocationDate (R-R3); a loss report blocks the keys (R-V8); a replay
// returns the first result and changes nothing.
func TestReportEvent(t *testing.T) {
	sign, auth := ProfileSign, ProfileAuth
	for _, tc := range []struct {
		name    string
		event   func(h holderCertificates) Event
		revoked map[Profile]int32
		blocked bool
	}{
		{name: "change of name", event: kind(EventRecordChange, FieldName),
			revoked: map[Profile]int32{sign: reasonAffiliationChanged}},
		{name: "change of address, date of birth and sex", event: kind(EventRecordChange, FieldAddress, FieldDateOfBirth, FieldSex),
			revoked: map[Profile]int32{sign: reasonAffiliationChanged}},
		{name: "marriage without a change of name", event: kind(EventRecordChange),
			revoked: map[Profile]int32{}},
		{name: "moved abroad", event: kind(EventMovedAbroad),
			revoked: map[Profile]int32{sign: reasonAffiliationChanged}},
		{name: "death", event: kind(EventDeath),
			revoked: map[Profile]int32{sign: reasonCessationOfOperation, auth: reasonCessationOfOperation}},
		{name: "loss or theft", event: kind(EventLossReport),
			revoked: map[Profile]int32{sign: reasonKeyCompromise, auth: reasonKeyCompromise}, blocked: true},
		{name: "card invalidated", event: kind(EventCardInvalidated),
			revoked: map[Profile]int32{sign: reasonCessationOfOperation, auth: reasonCessationOfOperation}},
		{name: "stops using AUTH", event: stopUsing(auth),
			revoked: map[Profile]int32{auth: reasonCessationOfOperation}},
		{name: "stops using both", event: stopUsing(sign, auth),
			revoked: map[Profile]int32{sign: reasonCessationOfOperation, auth: reasonCessationOfOperation}},
		{name: "record error in AUTH", event: func(h holderCertificates) Event {
			ev := kind(EventRecordError)(h)
			ev.Serial = h.serial[auth]
			return ev
		}, revoked: map[Profile]int32{auth: reasonAffiliationChanged}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestCA(t, caOptions{})
			h := issueBoth(t, c)
			ev := tc.event(h)
			res, err := c.ReportEvent(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := revocations(t, c, h); !maps.Equal(got, tc.revoked) {
				t.Errorf("revoked %v, want %v", got, tc.revoked)
			}
			var reported []string
			for _, e := range res.Revoked {
				reported = append(reported, fmt.Sprintf("%v/%d", e.Profile, e.Revocation.Reason))
				r := e.Revocation
				if !r.InvalidityDate.AsTime().Equal(mustTime(t, effective)) || !r.RevokedAt.AsTime().Equal(c.clock) {
					t.Errorf("%v: invalidityDate %s, revocationDate %s; want %s and now (R-R3)", e.Profile,
						r.InvalidityDate.AsTime(), r.RevokedAt.AsTime(), effective)
				}
			}
			var want []string
			for p, reason := range tc.revoked {
				want = append(want, fmt.Sprintf("%v/%d", p, reason))
			}
			if slices.Sort(reported); !slices.Equal(reported, slices.Sorted(slices.Values(want))) {
				t.Errorf("result lists %v, want %v", reported, want)
			}
			for p, spki := range h.spki {
				if blocked, err := c.store.KeyBlocked(spki); err != nil || blocked != tc.blocked {
					t.Errorf("%v key blocked %v (%v), want %v (R-V8)", p, blocked, err, tc.blocked)
				}
			}

			c.clock = c.clock.Add(time.Hour)
			again, err := c.ReportEvent(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if !again.Replayed || len(again.Revoked) != len(res.Revoked) {
				t.Errorf("replay: replayed %v, %d revoked; want the first result, %d revoked (R-R1)", again.Replayed, len(again.Revoked), len(res.Revoked))
			}
			if got := revocations(t, c, h); !maps.Equal(got, tc.revoked) {
				t.Errorf("after the replay: revoked %v, want %v", got, tc.revoked)
			}
		})
	}
}

// A refused event changes nothing.
func TestReportEventRefusals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		before  func(t *testing.T, c *testCA, h holderCertificates)
		event   func(h holderCertificates) Event
		refused refusal
	}{
		{name: "no kind", event: kind(EventUnspecified),
			refused: refusal{KindInvalid, "kind", "R-R1", "R-R1 events"}},
		{name: "stops using nothing", event: stopUsing(),
			refused: refusal{KindInvalid, "profiles", "R-R1", "name the profiles"}},
		{name: "change of an unknown field", event: kind(EventRecordChange, FieldUnspecified),
			refused: refusal{KindInvalid, "changed_fields[0]", "R-R1", ""}},
		{name: "record error without a serial", event: kind(EventRecordError),
			refused: refusal{KindInvalid, "serial", "R-R1", "hex serial"}},
		{name: "event id like an individual number", event: death(func(ev *Event) { ev.ID = "123456789012" }),
			refused: refusal{KindInvalid, "event_id", "R-P4", "individual number"}},
		{name: "effective in the future", event: death(func(ev *Event) { ev.EffectiveTime = "2026-12-01T11:00:00+09:00" }),
			refused: refusal{KindInvalid, "effective_time", "R-R3", "future"}},
		{name: "effective days before the holder's first certificate",
			event:   death(func(ev *Event) { ev.EffectiveTime = "2026-11-19T09:00:00+09:00" }),
			refused: refusal{KindInvalid, "effective_time", "R-R3", "first certificate"}},
		{name: "unknown holder", event: death(func(ev *Event) { ev.HolderID = "holder-2" }),
			refused: refusal{KindNotFound, "holder_id", "R-R1", "no certificate was ever issued"}},
		{name: "record error naming another holder's certificate",
			before: func(t *testing.T, c *testCA, _ holderCertificates) {
				other := request(t, ProfileAuth)
				other.Holder.ID = "holder-2"
				c.mustIssue(t, eventDay, false, other)
			},
			event: func(h holderCertificates) Event {
				ev := kind(EventRecordError)(h)
				ev.HolderID, ev.Serial = "holder-2", h.serial[ProfileSign]
				return ev
			}, refused: refusal{KindNotFound, "serial", "R-R1", "no such certificate of this holder"}},
		{name: "an event id again with another payload",
			before: func(t *testing.T, c *testCA, h holderCertificates) {
				if _, err := c.ReportEvent(context.Background(), stopUsing(ProfileAuth)(h)); err != nil {
					t.Fatal(err)
				}
			},
			event: kind(EventDeath), refused: refusal{KindConflict, "event_id", "R-R1", "different payload"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestCA(t, caOptions{})
			h := issueBoth(t, c)
			if tc.before != nil {
				tc.before(t, c, h)
			}
			was := revocations(t, c, h)
			res, err := c.ReportEvent(context.Background(), tc.event(h))
			tc.refused.check(t, err)
			if res != nil {
				t.Error("a refused event returned a result")
			}
			if got := revocations(t, c, h); !maps.Equal(got, was) {
				t.Errorf("the refused event revoked: %v, was %v", got, was)
			}
		})
	}
}

// kind is an event of the holder of that kind, effective at effective.
func kind(k EventKind, changed ...ChangedField) func(holderCertificates) Event {
	return func(holderCertificates) Event {
		return Event{ID: "event-1", Municipality: "13221", HolderID: "holder-1", Kind: k, ChangedFields: changed, EffectiveTime: effective}
	}
}

// death is a death of the holder, changed by edit.
func death(edit func(*Event)) func(holderCertificates) Event {
	return func(h holderCertificates) Event {
		ev := kind(EventDeath)(h)
		edit(&ev)
		return ev
	}
}

func stopUsing(profiles ...Profile) func(holderCertificates) Event {
	return func(h holderCertificates) Event {
		ev := kind(EventStopUsing)(h)
		ev.Profiles = profiles
		return ev
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
