package eventfeed

import (
	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// The keys of a line, in the order Encode writes them.
const (
	keyEventID       = "event_id"
	keyMunicipality  = "municipality_code"
	keyHolderID      = "holder_id"
	keyKind          = "kind"
	keyChangedFields = "changed_fields"
	keyCause         = "cause"
	keyProfiles      = "profiles"
	keySerial        = "serial"
	keyEffectiveTime = "effective_time"
)

// named pairs an enum value with its name in the feed.
type named[E comparable] struct {
	value E
	name  string
}

// The names of the enum values, one table per enum. The lists in the
// problems below must match them (TestNamesListed).
var (
	kinds = []named[cav1.EventKind]{
		{cav1.EventKind_EVENT_KIND_RECORD_CHANGE, "record_change"},
		{cav1.EventKind_EVENT_KIND_MOVED_ABROAD, "moved_abroad"},
		{cav1.EventKind_EVENT_KIND_DEATH, "death"},
		{cav1.EventKind_EVENT_KIND_LOSS_REPORT, "loss_report"},
		{cav1.EventKind_EVENT_KIND_CARD_INVALIDATED, "card_invalidated"},
		{cav1.EventKind_EVENT_KIND_STOP_USING, "stop_using"},
		{cav1.EventKind_EVENT_KIND_RECORD_ERROR, "record_error"},
	}
	fields = []named[cav1.ChangedField]{
		{cav1.ChangedField_CHANGED_FIELD_NAME, "name"},
		{cav1.ChangedField_CHANGED_FIELD_ADDRESS, "address"},
		{cav1.ChangedField_CHANGED_FIELD_DATE_OF_BIRTH, "date_of_birth"},
		{cav1.ChangedField_CHANGED_FIELD_SEX, "sex"},
	}
	causes = []named[cav1.ChangeCause]{
		{cav1.ChangeCause_CHANGE_CAUSE_MOVE, "move"},
		{cav1.ChangeCause_CHANGE_CAUSE_MARRIAGE, "marriage"},
		{cav1.ChangeCause_CHANGE_CAUSE_DIVORCE, "divorce"},
		{cav1.ChangeCause_CHANGE_CAUSE_ADOPTION, "adoption"},
		{cav1.ChangeCause_CHANGE_CAUSE_CORRECTION, "correction"},
		{cav1.ChangeCause_CHANGE_CAUSE_OTHER, "other"},
	}
	profiles = []named[cav1.Profile]{
		{cav1.Profile_PROFILE_SIGN, "sign"},
		{cav1.Profile_PROFILE_AUTH, "auth"},
	}
)

// The names as the problems list them.
const (
	kindList    = "record_change, moved_abroad, death, loss_report, card_invalidated, stop_using, record_error"
	fieldList   = "name, address, date_of_birth, sex"
	causeList   = "move, marriage, divorce, adoption, correction, other"
	profileList = "sign, auth"
)

// valueOf returns the value named name.
func valueOf[E comparable](table []named[E], name string) (E, bool) {
	for _, n := range table {
		if n.name == name {
			return n.value, true
		}
	}
	var zero E
	return zero, false
}

// nameOf returns the name of value.
func nameOf[E comparable](table []named[E], value E) (string, bool) {
	for _, n := range table {
		if n.value == value {
			return n.name, true
		}
	}
	return "", false
}
