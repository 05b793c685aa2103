package eventfeed

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// head is the part every line shares.
const head = `"event_id":"13221-20261121-0001","municipality_code":"13221","holder_id":"R-0001",`
const when = `"effective_time":"2026-11-21T09:00:00+09:00"`

// validLines are one line per kind (and the variants of record_change),
// with the request each stands for; the fuzz corpus starts from them.
var validLines = []struct {
	name string
	line string
	want *cav1.ReportEventRequest
}{
	{"address change by a move", `{` + head + `"kind":"record_change","changed_fields":["address"],"cause":"move",` + when + `}`,
		event(cav1.EventKind_EVENT_KIND_RECORD_CHANGE, func(r *cav1.ReportEventRequest) {
			r.ChangedFields = []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS}
			r.Cause = cav1.ChangeCause_CHANGE_CAUSE_MOVE
		})},
	{"every field corrected", `{` + head + `"kind":"record_change","changed_fields":["name","address","date_of_birth","sex"],"cause":"correction",` + when + `}`,
		event(cav1.EventKind_EVENT_KIND_RECORD_CHANGE, func(r *cav1.ReportEventRequest) {
			r.ChangedFields = []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_NAME, cav1.ChangedField_CHANGED_FIELD_ADDRESS,
				cav1.ChangedField_CHANGED_FIELD_DATE_OF_BIRTH, cav1.ChangedField_CHANGED_FIELD_SEX}
			r.Cause = cav1.ChangeCause_CHANGE_CAUSE_CORRECTION
		})},
	{"marriage without a new name", `{` + head + `"kind":"record_change","changed_fields":[],"cause":"marriage",` + when + `}`,
		event(cav1.EventKind_EVENT_KIND_RECORD_CHANGE, func(r *cav1.ReportEventRequest) { r.Cause = cav1.ChangeCause_CHANGE_CAUSE_MARRIAGE })},
	{"name change, no cause given", `{` + head + `"kind":"record_change","changed_fields":["name"],` + when + `}`,
		event(cav1.EventKind_EVENT_KIND_RECORD_CHANGE, func(r *cav1.ReportEventRequest) {
			r.ChangedFields = []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_NAME}
		})},
	{"moved abroad", `{` + head + `"kind":"moved_abroad",` + when + `}`, event(cav1.EventKind_EVENT_KIND_MOVED_ABROAD, nil)},
	{"death", `{` + head + `"kind":"death",` + when + `}`, event(cav1.EventKind_EVENT_KIND_DEATH, nil)},
	{"loss report", `{` + head + `"kind":"loss_report",` + when + `}`, event(cav1.EventKind_EVENT_KIND_LOSS_REPORT, nil)},
	{"card invalidated", `{` + head + `"kind":"card_invalidated",` + when + `}`, event(cav1.EventKind_EVENT_KIND_CARD_INVALIDATED, nil)},
	{"stop using both", `{` + head + `"kind":"stop_using","profiles":["sign","auth"],` + when + `}`,
		event(cav1.EventKind_EVENT_KIND_STOP_USING, func(r *cav1.ReportEventRequest) {
			r.Profiles = []cav1.Profile{cav1.Profile_PROFILE_SIGN, cav1.Profile_PROFILE_AUTH}
		})},
	{"record error", `{` + head + `"kind":"record_error","serial":"5C0A1b",` + when + `}`,
		event(cav1.EventKind_EVENT_KIND_RECORD_ERROR, func(r *cav1.ReportEventRequest) { r.Serial = "5C0A1b" })},
	{"keys in any order, spaces, UTC, fractional seconds",
		` { "effective_time" : "2026-11-21T00:00:00.5Z", "kind" : "death" , "holder_id":"R-0001", "municipality_code":"13221", "event_id":"13221-20261121-0001" } `,
		event(cav1.EventKind_EVENT_KIND_DEATH, func(r *cav1.ReportEventRequest) { r.EffectiveTime = "2026-11-21T00:00:00.5Z" })},
	{"escapes and non-ASCII ids are the CA's to judge", `{"event_id":"\u0065v\"1\"","municipality_code":"13221","holder_id":"住民-1","kind":"death",` + when + `}`,
		event(cav1.EventKind_EVENT_KIND_DEATH, func(r *cav1.ReportEventRequest) { r.EventId, r.HolderId = `ev"1"`, "住民-1" })},
}

func event(kind cav1.EventKind, more func(*cav1.ReportEventRequest)) *cav1.ReportEventRequest {
	r := &cav1.ReportEventRequest{EventId: "13221-20261121-0001", MunicipalityCode: "13221", HolderId: "R-0001", Kind: kind,
		EffectiveTime: "2026-11-21T09:00:00+09:00"}
	if more != nil {
		more(r)
	}
	return r
}

func TestDecodeEveryKind(t *testing.T) {
	seen := map[cav1.EventKind]bool{}
	for _, tc := range validLines {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.line))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !proto.Equal(got, tc.want) {
				t.Fatalf("Decode:\n got %v\nwant %v", got, tc.want)
			}
			seen[got.Kind] = true
			line, err := Encode(got)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			again, err := Decode(line)
			if err != nil || !proto.Equal(again, got) {
				t.Fatalf("Decode(Encode) = %v, %v; want %v", again, err, got)
			}
		})
	}
	for _, k := range kinds {
		if !seen[k.value] {
			t.Errorf("no valid line of kind %s", k.name)
		}
	}
}

// TestEncodeCanonical pins the written form: keys in the documented order,
// optional keys left out, no HTML escaping.
func TestEncodeCanonical(t *testing.T) {
	got, err := Encode(event(cav1.EventKind_EVENT_KIND_RECORD_CHANGE, func(r *cav1.ReportEventRequest) {
		r.ChangedFields = []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS}
		r.Cause = cav1.ChangeCause_CHANGE_CAUSE_MOVE
		r.EventId = "a&b<c>"
	}))
	want := `{"event_id":"a&b<c>","municipality_code":"13221","holder_id":"R-0001","kind":"record_change","changed_fields":["address"],"cause":"move","effective_time":"2026-11-21T09:00:00+09:00"}`
	if err != nil || string(got) != want {
		t.Fatalf("Encode = %s, %v\nwant   %s", got, err, want)
	}
	got, err = Encode(event(cav1.EventKind_EVENT_KIND_DEATH, nil))
	want = `{"event_id":"13221-20261121-0001","municipality_code":"13221","holder_id":"R-0001","kind":"death","effective_time":"2026-11-21T09:00:00+09:00"}`
	if err != nil || string(got) != want {
		t.Fatalf("Encode = %s, %v\nwant   %s", got, err, want)
	}
}

// secret is personal data the malformed lines below carry; no error may
// repeat it (R-P4).
const secret = "渡邊鷗外"

const death = `"kind":"death",` + when

// errorLines are malformed lines and the error each gets; the fuzz corpus
// starts from them too.
var errorLines = []struct {
	name, line, want string
}{
	{"empty", ``, "is empty"},
	{"blank", " \t ", "is empty"},
	{"not UTF-8", "{\"holder_id\":\"\xff" + secret + "\"}", "is not valid UTF-8"},
	{"newline inside", "{" + head + "\n" + death + "}", "contains a newline: a line holds exactly one event"},
	{"too long", `{"event_id":"` + strings.Repeat("x", MaxLineLength) + `"}`, "is longer than 65536 bytes"},
	{"not JSON", `{"holder_id": ` + secret + `}`, "is not valid JSON (at byte 15)"},
	{"comment is not an event", `# ` + secret, "is not valid JSON (at byte 1)"},
	{"truncated", `{` + head + `"kind":"dea`, "ends before its JSON object does"},
	{"array", `[{` + head + death + `}]`, "must be a JSON object"},
	{"string", `"` + secret + `"`, "must be a JSON object"},
	{"null", `null`, "must be a JSON object"},
	{"two objects", `{` + head + death + `} {}`, "has data after the JSON object"},
	{"trailing garbage", `{` + head + death + `}x` + secret, "has data after the JSON object"},
	{"unknown key", `{` + head + death + `,"address":"` + secret + `"}`, "address: is not a key of the format"},
	{"camelCase key", `{"eventId":"e","municipality_code":"13221","holder_id":"R-0001",` + death + `}`, "event_id: is misspelt: keys are snake_case and case matters"},
	{"acronym", `{"event_id":"e","municipality_code":"13221","holderID":"R-0001",` + death + `}`, "holder_id: is misspelt: keys are snake_case and case matters"},
	{"mixed case", `{"event_id":"e","municipality_code":"13221","Holder_ID":"R-0001",` + death + `}`, "holder_id: is misspelt: keys are snake_case and case matters"},
	{"upper-case key", `{"EVENT_ID":"e","municipality_code":"13221","holder_id":"R-0001",` + death + `}`, "event_id: is misspelt: keys are snake_case and case matters"},
	{"data as a key", `{"` + secret + `":"x",` + head + death + `}`, "has a key that is not in the format (not shown: it does not look like a key)"},
	{"case matters", `{"Event_id":"x",` + head + death + `}`, "event_id: is misspelt: keys are snake_case and case matters"},
	{"camelCase data as a key", `{"WatanabeOgai":"x",` + head + death + `}`, "has a key that is not in the format (not shown: it does not look like a key)"},
	{"repeated key", `{` + head + `"holder_id":"` + secret + `",` + death + `}`, "holder_id: appears more than once"},
	{"number", `{"event_id":1,"municipality_code":"13221","holder_id":"R-0001",` + death + `}`, "event_id: must be a string"},
	{"null value", `{` + head + `"kind":null,"effective_time":"2026-11-21T09:00:00+09:00"}`, "kind: must be a string"},
	{"municipality as a number", `{"event_id":"e","municipality_code":13221,"holder_id":"R-0001",` + death + `}`, "municipality_code: must be a string"},
	{"holder as an object", `{"event_id":"e","municipality_code":"13221","holder_id":{"name":"` + secret + `"},` + death + `}`, "holder_id: must be a string"},
	{"missing event_id", `{"municipality_code":"13221","holder_id":"R-0001",` + death + `}`, "event_id: is required"},
	{"missing municipality", `{"event_id":"e","holder_id":"R-0001",` + death + `}`, "municipality_code: is required"},
	{"missing holder", `{"event_id":"e","municipality_code":"13221",` + death + `}`, "holder_id: is required"},
	{"missing kind", `{` + head + when + `}`, "kind: is required"},
	{"missing time", `{` + head + `"kind":"death"}`, "effective_time: is required"},
	{"empty holder", `{"event_id":"e","municipality_code":"13221","holder_id":"",` + death + `}`, "holder_id: must not be empty"},
	{"unknown kind", `{` + head + `"kind":"` + secret + `",` + when + `}`, "kind: must be one of " + kindList},
	{"proto enum name", `{` + head + `"kind":"EVENT_KIND_DEATH",` + when + `}`, "kind: must be one of " + kindList},
	{"kind as a number", `{` + head + `"kind":3,` + when + `}`, "kind: must be a string"},
	{"date only", `{` + head + `"kind":"death","effective_time":"2026-11-21"}`, "effective_time: " + problemTime},
	{"no offset", `{` + head + `"kind":"death","effective_time":"2026-11-21T09:00:00"}`, "effective_time: " + problemTime},
	{"bad month", `{` + head + `"kind":"death","effective_time":"2026-13-21T09:00:00+09:00"}`, "effective_time: " + problemTime},
	{"time as a number", `{` + head + `"kind":"death","effective_time":1795000000}`, "effective_time: must be a string"},
	{"empty time", `{` + head + `"kind":"death","effective_time":""}`, "effective_time: must not be empty"},
	{"changed_fields not an array", `{` + head + `"kind":"record_change","changed_fields":"address",` + when + `}`, "changed_fields: must be an array of strings"},
	{"changed_fields element not a string", `{` + head + `"kind":"record_change","changed_fields":["name",2],` + when + `}`, "changed_fields[1]: must be a string"},
	{"unknown changed field", `{` + head + `"kind":"record_change","changed_fields":["address","` + secret + `"],` + when + `}`, "changed_fields[1]: must be one of " + fieldList},
	{"repeated changed field", `{` + head + `"kind":"record_change","changed_fields":["name","name"],` + when + `}`, "changed_fields[1]: repeats an earlier element"},
	{"changed_fields on a death", `{` + head + `"kind":"death","changed_fields":["name"],` + when + `}`, "changed_fields: belongs to record_change events only"},
	{"unknown cause", `{` + head + `"kind":"record_change","cause":"elopement",` + when + `}`, "cause: must be one of " + causeList},
	{"cause on a move abroad", `{` + head + `"kind":"moved_abroad","cause":"move",` + when + `}`, "cause: belongs to record_change events only"},
	{"stop_using without profiles", `{` + head + `"kind":"stop_using",` + when + `}`, "profiles: is required"},
	{"stop_using with no profile", `{` + head + `"kind":"stop_using","profiles":[],` + when + `}`, "profiles: must name at least one profile"},
	{"unknown profile", `{` + head + `"kind":"stop_using","profiles":["SIGN"],` + when + `}`, "profiles[0]: must be one of " + profileList},
	{"repeated profile", `{` + head + `"kind":"stop_using","profiles":["auth","sign","auth"],` + when + `}`, "profiles[2]: repeats an earlier element"},
	{"profiles on a loss report", `{` + head + `"kind":"loss_report","profiles":["sign"],` + when + `}`, "profiles: belongs to stop_using events only"},
	{"profiles null", `{` + head + `"kind":"stop_using","profiles":null,` + when + `}`, "profiles: must be an array of strings"},
	{"record_error without serial", `{` + head + `"kind":"record_error",` + when + `}`, "serial: is required"},
	{"serial not hex", `{` + head + `"kind":"record_error","serial":"0x5c0a",` + when + `}`, "serial: " + problemSerial},
	{"serial zero", `{` + head + `"kind":"record_error","serial":"000",` + when + `}`, "serial: " + problemSerial},
	{"serial too long", `{` + head + `"kind":"record_error","serial":"` + strings.Repeat("a", 41) + `",` + when + `}`, "serial: " + problemSerial},
	{"serial on a death", `{` + head + `"kind":"death","serial":"5c",` + when + `}`, "serial: belongs to record_error events only"},
	{"deep nesting", `{"event_id":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, "is not valid JSON (at byte 10012)"},
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range errorLines {
		t.Run(tc.name, func(t *testing.T) {
			req, err := Decode([]byte(tc.line))
			if err == nil {
				t.Fatalf("Decode accepted it: %v", req)
			}
			var e *Error
			if !errors.As(err, &e) || e.Line != 0 {
				t.Fatalf("error %#v is not an *Error without a line number", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error %q\n     want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "R-0001") {
				t.Errorf("error %q repeats data from the line (R-P4)", err)
			}
		})
	}
}

// TestEncodeRefuses checks that Encode writes no line Decode would refuse.
func TestEncodeRefuses(t *testing.T) {
	cases := []struct {
		name string
		req  *cav1.ReportEventRequest
		want string
	}{
		{"nil", nil, "event_id: is required"},
		{"no event id", event(cav1.EventKind_EVENT_KIND_DEATH, func(r *cav1.ReportEventRequest) { r.EventId = "" }), "event_id: is required"},
		{"no kind", event(cav1.EventKind_EVENT_KIND_UNSPECIFIED, nil), "kind: is required"},
		{"unknown kind", event(cav1.EventKind(42), nil), "kind: must be one of " + kindList},
		{"invalid UTF-8", event(cav1.EventKind_EVENT_KIND_DEATH, func(r *cav1.ReportEventRequest) { r.HolderId = "\xff" }), "holder_id: is not valid UTF-8"},
		{"bad time", event(cav1.EventKind_EVENT_KIND_DEATH, func(r *cav1.ReportEventRequest) { r.EffectiveTime = "tomorrow" }), "effective_time: " + problemTime},
		{"fields on a death", event(cav1.EventKind_EVENT_KIND_DEATH, func(r *cav1.ReportEventRequest) {
			r.ChangedFields = []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_NAME}
		}), "changed_fields: belongs to record_change events only"},
		{"unspecified field", event(cav1.EventKind_EVENT_KIND_RECORD_CHANGE, func(r *cav1.ReportEventRequest) {
			r.ChangedFields = []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_UNSPECIFIED}
		}), "changed_fields[0]: must be one of " + fieldList},
		{"unknown cause", event(cav1.EventKind_EVENT_KIND_RECORD_CHANGE, func(r *cav1.ReportEventRequest) { r.Cause = 99 }), "cause: must be one of " + causeList},
		{"stop using nothing", event(cav1.EventKind_EVENT_KIND_STOP_USING, nil), "profiles: is required"},
		{"unspecified profile", event(cav1.EventKind_EVENT_KIND_STOP_USING, func(r *cav1.ReportEventRequest) {
			r.Profiles = []cav1.Profile{cav1.Profile_PROFILE_UNSPECIFIED}
		}), "profiles[0]: must be one of " + profileList},
		{"serial on a death", event(cav1.EventKind_EVENT_KIND_DEATH, func(r *cav1.ReportEventRequest) { r.Serial = "5c" }), "serial: belongs to record_error events only"},
		{"record error without serial", event(cav1.EventKind_EVENT_KIND_RECORD_ERROR, nil), "serial: is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			line, err := Encode(tc.req)
			if err == nil {
				t.Fatalf("Encode wrote %s", line)
			}
			if err.Error() != tc.want {
				t.Errorf("error %q\n     want %q", err, tc.want)
			}
		})
	}
}

// TestNamesListed checks that the problems list exactly the names of the
// tables, in their order.
func TestNamesListed(t *testing.T) {
	list := func(names []string) string { return strings.Join(names, ", ") }
	for _, c := range []struct{ got, want string }{
		{kindList, list(namesOf(kinds, valuesOf(kinds)))},
		{fieldList, list(namesOf(fields, valuesOf(fields)))},
		{causeList, list(namesOf(causes, valuesOf(causes)))},
		{profileList, list(namesOf(profiles, valuesOf(profiles)))},
	} {
		if c.got != c.want {
			t.Errorf("problem lists %q, table has %q", c.got, c.want)
		}
	}
	// Every kind of the proto has a name (a new kind needs one).
	for v, name := range cav1.EventKind_name {
		if _, ok := nameOf(kinds, cav1.EventKind(v)); !ok && v != 0 {
			t.Errorf("EventKind %s has no name in the feed", name)
		}
	}
	for v, name := range cav1.ChangeCause_name {
		if _, ok := nameOf(causes, cav1.ChangeCause(v)); !ok && v != 0 {
			t.Errorf("ChangeCause %s has no name in the feed", name)
		}
	}
	for v, name := range cav1.ChangedField_name {
		if _, ok := nameOf(fields, cav1.ChangedField(v)); !ok && v != 0 {
			t.Errorf("ChangedField %s has no name in the feed", name)
		}
	}
}

func valuesOf[E comparable](table []named[E]) []E {
	out := make([]E, len(table))
	for i, n := range table {
		out[i] = n.value
	}
	return out
}
