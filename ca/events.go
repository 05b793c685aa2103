package ca

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
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

// The domain of a caller-supplied effective time (R-R3). It becomes the
// invalidityDate of CRL entries and OCSP responses, so it is checked at the
// API, before anything is recorded: a time the CRL cannot encode (year 1000,
// year 0001) must never reach the store.
const (
	// maxClockSkew is how far in the future an effective time may be: the
	// caller's clock may run a little ahead of the CA's.
	maxClockSkew = time.Minute
	// effectiveTolerance is how far before a certificate's notBefore an
	// effective time may lie. A counter revocation effective before the
	// certificate existed is refused beyond it; within it (clocks, a report
	// dated the day before issuance) the invalidityDate is raised to the
	// notBefore, since a certificate cannot become invalid before it exists.
	// An event effective more than this before every certificate of its
	// holder is refused too: it ends none of them, and is most likely a
	// wrong date. (Events effective before some of the holder's
	// certificates are normal: those certificates already reflect the
	// change and are spared, except after a death, which ends them all.)
	effectiveTolerance = 24 * time.Hour
	// minEffectiveYear bounds every effective time, whatever the holder:
	// X.509 times start in 1950 (UTCTime), and an event for a holder with
	// no certificate must be refused as such, not fail in the store.
	minEffectiveYear = 1950
)

// ReportEvent revokes what the R-R1 table says the event ends, all in one
// transaction; replaying an event id returns the first result. It is
// counted in shomei_ca_events_total by kind and outcome.
func (c *CA) ReportEvent(ctx context.Context, ev Event) (*Revocation, error) {
	res, err := c.reportEvent(ctx, ev)
	c.metrics.event(ev.Kind, res, err)
	return res, err
}

func (c *CA) reportEvent(ctx context.Context, ev Event) (*Revocation, error) {
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
		InvalidityDate: effective, Actor: c.actor(ctx), Cause: "event " + ev.ID, KnownHolder: true}
	eventTargets(vs, ev, &req)
	if err := vs.err(KindInvalid); err != nil {
		return nil, err
	}
	if err := c.checkEventTime(ev, effective); err != nil {
		return nil, err
	}
	req.PayloadSHA256 = ev.digest(effective)
	req.Audit = []*storev1.AuditRecord{eventAudit(ev, c.actor(ctx), now, effective)}
	res, err := c.cfg.Store.Revoke(req)
	switch {
	case errors.Is(err, store.ErrEventConflict):
		return nil, &Error{Kind: KindConflict, Err: err, Violations: []Violation{{"event_id", "R-R1",
			fmt.Sprintf("event %s was already reported with a different payload; a replay must repeat it exactly, another event needs its own id", ev.ID)}}}
	case errors.Is(err, store.ErrUnknownHolder):
		return nil, &Error{Kind: KindNotFound, Err: err, Violations: []Violation{{"holder_id", "R-R1",
			fmt.Sprintf("no certificate was ever issued to this holder in municipality %s", ev.Municipality)}}}
	case err != nil:
		return nil, storeRefusal(err, "serial")
	}
	c.afterRevoke(res, EventKindName(ev.Kind))
	c.log.Info("event applied", "event", EventRef(ev.Municipality, ev.ID), "kind", int(ev.Kind), "revoked", len(res.Revoked), "replayed", res.Replayed)
	return res, nil
}

// eventTargets sets what the R-R1 table says ev revokes, and why, in req;
// a malformed event is refused in vs.
func eventTargets(vs *violations, ev Event, req *store.RevokeRequest) {
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
	case EventDeath:
		// A death reported after the fact also ends certificates issued
		// after it (their invalidityDate is their notBefore).
		req.Profiles, req.Reason, req.LaterIssued = both, store.ReasonCessationOfOperation, true
	case EventCardInvalidated:
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
		sn, err := ParseSerial(ev.Serial)
		if err != nil {
			vs.add("serial", "R-R1", "a record error names the certificate in error by its hex serial")
		}
		req.Serials, req.Reason = [][]byte{sn}, store.ReasonAffiliationChanged
	default:
		vs.add("kind", "R-R1", "must be one of the R-R1 events")
	}
}

// eventAudit is the R-K3 record of a reported event. It names the holder
// by municipality and holder id only (R-P4).
func eventAudit(ev Event, actor string, now, effective time.Time) *storev1.AuditRecord {
	return &storev1.AuditRecord{Time: timestamppb.New(now), Actor: actor, Action: store.ActionEventReport,
		Fields: []*storev1.AuditField{{Key: "event_id", Value: ev.ID}, {Key: "municipality", Value: ev.Municipality},
			{Key: "holder_id", Value: ev.HolderID}, {Key: "kind", Value: fmt.Sprint(int(ev.Kind))},
			{Key: "cause", Value: fmt.Sprint(ev.Cause)},
			{Key: "effective", Value: effective.UTC().Format(time.RFC3339)}}}
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
	sn, err := ParseSerial(serialHex)
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
	if nb := rec.NotBefore.AsTime(); effective.Before(nb.Add(-effectiveTolerance)) {
		return nil, refuse(KindInvalid, "effective_time", "R-R3", "is before the certificate's notBefore %s (by more than %s)",
			nb.UTC().Format(time.RFC3339), effectiveTolerance)
	}
	res, err := c.cfg.Store.Revoke(store.RevokeRequest{Serials: [][]byte{sn}, Reason: reason, InvalidityDate: effective, Now: now,
		BlockKeys: reason == store.ReasonKeyCompromise, Actor: c.actor(ctx), Cause: "counter request", Municipality: rec.MunicipalityCode})
	if err != nil {
		return nil, storeRefusal(err, "serial")
	}
	c.afterRevoke(res, SourceCounter)
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
	case t.Year() < minEffectiveYear:
		vs.add("effective_time", "R-R3", "is before %d: no certificate is that old, and a CRL cannot carry it", minEffectiveYear)
	}
	return t
}

// checkEventTime refuses an effective time more than effectiveTolerance
// before every certificate of the event's holder (R-R3). A holder with no
// certificate is left to the store, which answers a replay or refuses the
// unknown holder in the revoking transaction.
func (c *CA) checkEventTime(ev Event, effective time.Time) error {
	recs, err := c.cfg.Store.HolderCertificates(ev.Municipality, ev.HolderID)
	if err != nil {
		return fmt.Errorf("ca: reading the holder's certificates: %w", err)
	}
	var first time.Time
	for _, r := range recs {
		if nb := r.NotBefore.AsTime(); r.NotBefore != nil && (first.IsZero() || nb.Before(first)) {
			first = nb
		}
	}
	if !first.IsZero() && effective.Before(first.Add(-effectiveTolerance)) {
		return refuse(KindInvalid, "effective_time", "R-R3", "is before the holder's first certificate (notBefore %s) by more than %s",
			first.UTC().Format(time.RFC3339), effectiveTolerance)
	}
	return nil
}

// digest is the SHA-256 of the event's canonical payload: every field the
// caller sent but the event id, in a fixed order, each length-prefixed, the
// lists sorted (their order means nothing), the serial as parsed and the
// effective time in UTC. A replay must carry the same (R-R1).
func (ev Event) digest(effective time.Time) []byte {
	h := sha256.New()
	put := func(s string) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	put("shomei event v1")
	put(ev.Municipality)
	put(ev.HolderID)
	put(strconv.Itoa(int(ev.Kind)))
	put(strconv.Itoa(len(ev.ChangedFields)))
	for _, f := range slices.Sorted(slices.Values(ev.ChangedFields)) {
		put(strconv.Itoa(int(f)))
	}
	put(strconv.Itoa(ev.Cause))
	put(strconv.Itoa(len(ev.Profiles)))
	for _, p := range slices.Sorted(slices.Values(ev.Profiles)) {
		put(strconv.Itoa(int(p)))
	}
	sn, _ := ParseSerial(ev.Serial)
	put(hex.EncodeToString(sn))
	put(effective.UTC().Format(time.RFC3339Nano))
	return h.Sum(nil)
}

// storeRefusal maps store errors of revocation onto refusals.
func storeRefusal(err error, field string) error {
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Kind: KindNotFound, Err: err, Violations: []Violation{{field, "R-R1", "no such certificate of this holder"}}}
	}
	return fmt.Errorf("ca: recording the revocation: %w", err)
}

// afterRevoke counts what res revoked now (by reason, from source) and
// tells the revocation publishers (CRLs, OCSP) about new revisions.
func (c *CA) afterRevoke(res *Revocation, source string) {
	if !res.Replayed {
		for _, e := range res.Revoked {
			if !e.AlreadyRevoked && e.Revocation != nil {
				c.metrics.revocations(source, e.Revocation.Reason, 1)
			}
		}
	}
	if c.cfg.OnStatusChange != nil && !res.Replayed && len(res.Revoked) > 0 {
		c.cfg.OnStatusChange()
	}
}
