package ca

import (
	"bytes"
	"testing"
	"time"
)

// TestEventDigest: the payload digest that tells a replay from a reused
// event id (R-R1) ignores what means nothing (list order, the offset an
// instant is written in, the event id) and changes with everything else.
func TestEventDigest(t *testing.T) {
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))
	base := Event{ID: "e1", Municipality: "13221", HolderID: "H-1", Kind: EventRecordChange,
		ChangedFields: []ChangedField{FieldName, FieldAddress}, Cause: 2, Profiles: []Profile{ProfileSign, ProfileAuth}, Serial: "0a1b"}
	d := base.digest(at)
	same := base
	same.ID, same.ChangedFields, same.Profiles, same.Serial = "e2", []ChangedField{FieldAddress, FieldName}, []Profile{ProfileAuth, ProfileSign}, "A1B"
	if !bytes.Equal(d, same.digest(at.UTC())) {
		t.Error("the digest depends on list order, the serial's spelling, the offset or the event id")
	}
	for name, edit := range map[string]func(*Event, *time.Time){
		"holder":         func(e *Event, _ *time.Time) { e.HolderID = "H-2" },
		"municipality":   func(e *Event, _ *time.Time) { e.Municipality = "13101" },
		"kind":           func(e *Event, _ *time.Time) { e.Kind = EventDeath },
		"changed fields": func(e *Event, _ *time.Time) { e.ChangedFields = []ChangedField{FieldName} },
		"cause":          func(e *Event, _ *time.Time) { e.Cause = 3 },
		"profiles":       func(e *Event, _ *time.Time) { e.Profiles = []Profile{ProfileSign} },
		"serial":         func(e *Event, _ *time.Time) { e.Serial = "0a1c" },
		"effective time": func(_ *Event, t *time.Time) { *t = t.Add(time.Second) },
	} {
		e, when := base, at
		edit(&e, &when)
		if bytes.Equal(d, e.digest(when)) {
			t.Errorf("another %s gives the same digest", name)
		}
	}
}
