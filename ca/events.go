package ca

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
)

// EventKind is a row of the R-R1 table.
type EventKind int

// The events of R-R1.
const (
	EventUnspecified EventKind = iota
	EventRecordChange
	EventMovedAbroad
	EventDeath
	EventLossReport
	EventCardInvalidated
	EventStopUsing
	EventRecordError
)

// ChangedField is one of the basic 4 info.
type ChangedField int

// The basic 4 info (R-P2).
const (
	FieldUnspecified ChangedField = iota
	FieldName
	FieldAddress
	FieldDateOfBirth
	FieldSex
)

// Event is a resident-record change or counter report for one holder.
type Event struct {
	ID, Municipality, HolderID string
	Kind                       EventKind
	ChangedFields              []ChangedField
	Cause                      int // ChangeCause, recorded only
	Profiles                   []Profile
	Serial                     string
	EffectiveTime              string // RFC 3339
}

// Revocation is the outcome of ReportEvent or Revoke.
type Revocation = store.RevokeResult

var eventIDPattern = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)

// maxClockSkew is how far in the future an effective time may be.
const maxClockSkew = time.Minute

// ReportEvent revokes what the R-R1 table says the event ends, all in one
// transaction; replaying an event id returns the first result.
func (c *CA) ReportEvent(ctx context.Context, ev Event) (*Revocation, error) {
	if err := checkEventSizes(ev); err != nil { // counts and lengths first (limits.go)
		return nil, err
	}
	now := c.now()
	vs := &violations{}
	if !eventIDPattern.MatchString(ev.ID) {
		vs.add("event_id", "R-R1", "must be 1-128 printable ASCII characters, unique per municipality")
	} else if looksLikeIndividualNumber(ev.ID) {
		vs.add("event_id", "R-P4", individualNumberRefusal)
	}
	validateMunicipality(vs, Municipality{Code: ev.Municipality}, false)
	validateHolderID(vs, "holder_id", ev.HolderID)
	effective := parseEffective(vs, ev.EffectiveTime, now, true)

	req := store.RevokeRequest{Municipality: ev.Municipality, EventID: ev.ID, HolderID: ev.HolderID, Now: now,
		InvalidityDate: effective, Actor: c.actor(ctx), Cause: "event " + ev.ID}
	both := []Profile{ProfileSign, ProfileAuth}
	switch ev.Kind {
	case EventRecordChange:
		// A change of any of the basic 4 info ends SIGN; marriage without a
		// new name changes none of them and ends nothing.
		for i, f := range ev.ChangedFields {
			if f < FieldName || f > FieldSex {
				vs.add(fmt.Sprintf("changed_fields[%d]", i), "R-R1", "must be NAME, ADDRESS, DATE_OF_BIRTH or SEX")
			}
		}
		if len(ev.ChangedFields) > 0 {
			req.Profiles, req.Reason = []Profile{ProfileSign}, store.ReasonAffiliationChanged
		}
	case EventMovedAbroad:
		req.Profiles, req.Reason = []Profile{ProfileSign}, store.ReasonAffiliationChanged
	case EventDeath, EventCardInvalidated:
		req.Profiles, req.Reason = both, store.ReasonCessationOfOperation
	case EventLossReport:
		req.Profiles, req.Reason, req.BlockKeys = both, store.ReasonKeyCompromise, true
	case EventStopUsing:
		if len(ev.Profiles) == 0 {
			vs.add("profiles", "R-R1", "name the profiles the holder stops using")
		}
		for i, p := range ev.Profiles {
			if p != ProfileSign && p != ProfileAuth {
				vs.add(fmt.Sprintf("profiles[%d]", i), "R-R1", "must be SIGN or AUTH")
			}
		}
		req.Profiles, req.Reason = slices.Clone(ev.Profiles), store.ReasonCessationOfOperation
	case EventRecordError:
		sn, err := parseSerial(ev.Serial)
		if err != nil {
			vs.add("serial", "R-R1", "a record error names the certificate in error by its hex serial")
		}
		req.Serials, req.Reason = [][]byte{sn}, store.ReasonAffiliationChanged
	default:
		vs.add("kind", "R-R1", "must be one of the R-R1 events")
	}
	if err := vs.err(KindInvalid); err != nil {
		return nil, err
	}
	req.Audit = []*storev1.AuditRecord{{Time: timestamppb.New(now), Actor: c.actor(ctx), Action: "event.report",
		Fields: []*storev1.AuditField{{Key: "event_id", Value: ev.ID}, {Key: "municipality", Value: ev.Municipality},
			{Key: "holder_id", Value: ev.HolderID}, {Key: "kind", Value: fmt.Sprint(int(ev.Kind))},
			{Key: "cause", Value: fmt.Sprint(ev.Cause)},
			{Key: "effective", Value: effective.UTC().Format(time.RFC3339)}}}}
	res, err := c.cfg.Store.Revoke(req)
	if err != nil {
		return nil, storeRefusal(err, "serial")
	}
	c.afterRevoke(res)
	c.log.Info("event applied", "event", EventRef(ev.Municipality, ev.ID), "kind", int(ev.Kind), "revoked", len(res.Revoked), "replayed", res.Replayed)
	return res, nil
}

// EventRef names an event in the log without its id: the first 8 bytes,
// in hex, of SHA-256 over "<municipality>/<event_id>". An event id is the
// municipal system's free-form text and is never logged whole (R-P4); an
// operator who has the id computes the same reference to find its lines
// (printf '13221/move-1' | sha256sum | cut -c1-16).
func EventRef(municipality, eventID string) string {
	sum := sha256.Sum256([]byte(municipality + "/" + eventID))
	return hex.EncodeToString(sum[:8])
}

// Revoke revokes one certificate at a counter request. keyCompromise also
// blocks its key (R-V8).
func (c *CA) Revoke(ctx context.Context, serialHex string, reason int32, effectiveTime string) (*Revocation, error) {
	if err := checkRevokeSizes(serialHex, effectiveTime); err != nil { // lengths first (limits.go)
		return nil, err
	}
	now := c.now()
	vs := &violations{}
	sn, err := parseSerial(serialHex)
	if err != nil {
		vs.add("serial", "R-R2", "must be the certificate serial number in hex")
	}
	switch reason {
	case store.ReasonKeyCompromise, store.ReasonAffiliationChanged, store.ReasonCessationOfOperation:
	default:
		vs.add("reason", "R-R1", "must be KEY_COMPROMISE, AFFILIATION_CHANGED or CESSATION_OF_OPERATION")
	}
	effective := parseEffective(vs, effectiveTime, now, false)
	if err := vs.err(KindInvalid); err != nil {
		return nil, err
	}
	rec, err := c.Certificate(serialHex)
	if err != nil {
		return nil, err
	}
	res, err := c.cfg.Store.Revoke(store.RevokeRequest{Serials: [][]byte{sn}, Reason: reason, InvalidityDate: effective, Now: now,
		BlockKeys: reason == store.ReasonKeyCompromise, Actor: c.actor(ctx), Cause: "counter request", Municipality: rec.MunicipalityCode})
	if err != nil {
		return nil, storeRefusal(err, "serial")
	}
	c.afterRevoke(res)
	c.log.Info("certificate revoked at a counter request", "serial", serialHex, "reason", reason)
	return res, nil
}

// parseEffective reads an effective time (R-R3); empty means now when
// optional.
func parseEffective(vs *violations, s string, now time.Time, required bool) time.Time {
	if s == "" && !required {
		return now
	}
	t, err := time.Parse(time.RFC3339, s)
	switch {
	case err != nil:
		vs.add("effective_time", "R-R3", "must be an RFC 3339 time, e.g. 2026-11-21T09:00:00+09:00")
	case t.After(now.Add(maxClockSkew)):
		vs.add("effective_time", "R-R3", "is in the future")
	}
	return t
}

// storeRefusal maps store errors of revocation onto refusals.
func storeRefusal(err error, field string) error {
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Kind: KindNotFound, Err: err, Violations: []Violation{{field, "R-R1", "no such certificate of this holder"}}}
	}
	return fmt.Errorf("ca: recording the revocation: %w", err)
}

// afterRevoke tells the revocation publishers (CRLs, OCSP) about new
// revisions.
func (c *CA) afterRevoke(res *Revocation) {
	if c.cfg.OnStatusChange != nil && !res.Replayed && len(res.Revoked) > 0 {
		c.cfg.OnStatusChange()
	}
}
