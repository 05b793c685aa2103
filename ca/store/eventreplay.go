package store

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// ActionEventReport is the action of the audit record an event request
// carries (ca.ReportEvent writes it).
const ActionEventReport = "event.report"

// eventAuditFields are the fields of an event's audit record that say what
// the event was, compared for events recorded before their payload digest
// was kept.
var eventAuditFields = []string{"holder_id", "kind", "cause", "effective"}

// sameEvent checks that r repeats the event first recorded with its id, and
// fails with ErrEventConflict naming the event id if it does not (R-R1: a
// replay returns the first result; another event reusing the id must not
// look like one).
//
// An event recorded with a payload digest is matched by the digest. An event
// recorded before the digest was kept (PayloadSha256 empty) is matched by its
// audit record: the holder, kind, cause and effective time it recorded must
// be those of r's event audit record, and the certificates it ended must be
// among those r names (its serials, or its profiles). Without such a record to compare, the
// request is refused rather than guessed to be a replay.
func sameEvent(tx engine.Tx, r RevokeRequest, first *storev1.EventResult) error {
	conflict := func(why string) error {
		return fmt.Errorf("event %s: %w (%s)", r.EventID, ErrEventConflict, why)
	}
	if len(first.PayloadSha256) > 0 {
		if !bytes.Equal(first.PayloadSha256, r.PayloadSHA256) {
			return conflict("its payload differs from the event first recorded with this id")
		}
		return nil
	}
	var now *storev1.AuditRecord
	for _, a := range r.Audit {
		if a.Action == ActionEventReport {
			now = a
		}
	}
	if now == nil {
		return conflict("recorded without a payload digest, and this request has no event record to compare")
	}
	then, err := legacyEventAudit(tx, r.Municipality, r.EventID, first)
	if err != nil {
		return err
	}
	if then == nil {
		return conflict("recorded without a payload digest or an audit record to compare with")
	}
	for _, key := range eventAuditFields {
		if auditField(then, key) != auditField(now, key) {
			return conflict("its " + key + " differs from the event first recorded with this id")
		}
	}
	// The audit record has no profiles or serial: the certificates the
	// event ended stand for them. A replay names them all (a record
	// error exactly its serial); a request naming others is another event.
	for _, e := range first.Revoked {
		if len(r.Serials) > 0 && !slices.ContainsFunc(r.Serials, func(sn []byte) bool { return bytes.Equal(sn, e.Serial) }) ||
			len(r.Serials) == 0 && !slices.Contains(r.Profiles, e.Profile) {
			return conflict("it names other certificates than the event first recorded with this id ended")
		}
	}
	for _, sn := range r.Serials {
		if !slices.ContainsFunc(first.Revoked, func(e *storev1.RevokedEntry) bool { return bytes.Equal(sn, e.Serial) }) {
			return conflict("it names another serial than the event first recorded with this id")
		}
	}
	return nil
}

// legacyEventAudit finds the audit record of an event applied before
// payload digests were kept, searching back from the newest record to the
// event's application time. Only replays of such events search.
func legacyEventAudit(tx engine.Tx, municipality, eventID string, first *storev1.EventResult) (*storev1.AuditRecord, error) {
	applied := first.AppliedAt.AsTime()
	c := tx.Bucket(bucketAudit).Cursor()
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		rec := new(storev1.AuditRecord)
		if err := proto.Unmarshal(v, rec); err != nil {
			return nil, fmt.Errorf("store is damaged: audit record %x: %w", k, err)
		}
		if rec.Time.IsValid() && rec.Time.AsTime().Before(applied) {
			return nil, nil
		}
		if rec.Action == ActionEventReport && auditField(rec, "event_id") == eventID && auditField(rec, "municipality") == municipality {
			return rec, nil
		}
	}
	return nil, nil
}

// auditField is the value of the field key of an audit record, or "".
func auditField(rec *storev1.AuditRecord, key string) string {
	for _, f := range rec.Fields {
		if f.Key == key {
			return f.Value
		}
	}
	return ""
}
