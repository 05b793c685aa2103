package eventfeed

import (
	"bytes"
	"encoding/json"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// Encode writes req as one line of a feed, without a line ending: the keys
// in the documented order, optional keys only when set. It refuses, with an
// *Error naming the key, a request no line can stand for (a required field
// missing, a field that does not belong to the kind, an enum value with no
// name). Decode(Encode(req)) equals req.
func Encode(req *cav1.ReportEventRequest) ([]byte, error) {
	present := map[string]bool{
		keyEventID:       req.GetEventId() != "",
		keyMunicipality:  req.GetMunicipalityCode() != "",
		keyHolderID:      req.GetHolderId() != "",
		keyKind:          req.GetKind() != cav1.EventKind_EVENT_KIND_UNSPECIFIED,
		keyChangedFields: len(req.GetChangedFields()) > 0,
		keyCause:         req.GetCause() != cav1.ChangeCause_CHANGE_CAUSE_UNSPECIFIED,
		keyProfiles:      len(req.GetProfiles()) > 0,
		keySerial:        req.GetSerial() != "",
		keyEffectiveTime: req.GetEffectiveTime() != "",
	}
	if err := validate(req, present); err != nil {
		return nil, err
	}
	w := &lineWriter{}
	w.str(keyEventID, req.GetEventId())
	w.str(keyMunicipality, req.GetMunicipalityCode())
	w.str(keyHolderID, req.GetHolderId())
	kind, _ := nameOf(kinds, req.GetKind())
	w.str(keyKind, kind)
	if present[keyChangedFields] {
		w.names(keyChangedFields, namesOf(fields, req.GetChangedFields()))
	}
	if present[keyCause] {
		cause, _ := nameOf(causes, req.GetCause())
		w.str(keyCause, cause)
	}
	if present[keyProfiles] {
		w.names(keyProfiles, namesOf(profiles, req.GetProfiles()))
	}
	if present[keySerial] {
		w.str(keySerial, req.GetSerial())
	}
	w.str(keyEffectiveTime, req.GetEffectiveTime())
	w.b.WriteByte('}')
	return w.b.Bytes(), nil
}

func namesOf[E comparable](table []named[E], values []E) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i], _ = nameOf(table, v)
	}
	return out
}

// lineWriter writes the keys of one JSON object.
type lineWriter struct {
	b bytes.Buffer
}

func (w *lineWriter) key(k string) {
	if w.b.Len() == 0 {
		w.b.WriteByte('{')
	} else {
		w.b.WriteByte(',')
	}
	w.quote(k)
	w.b.WriteByte(':')
}

func (w *lineWriter) str(k, v string) {
	w.key(k)
	w.quote(v)
}

func (w *lineWriter) names(k string, vs []string) {
	w.key(k)
	w.b.WriteByte('[')
	for i, v := range vs {
		if i > 0 {
			w.b.WriteByte(',')
		}
		w.quote(v)
	}
	w.b.WriteByte(']')
}

// quote writes s as a JSON string. HTML characters stay as they are: the
// feed is not embedded in HTML.
func (w *lineWriter) quote(s string) {
	enc := json.NewEncoder(&w.b)
	enc.SetEscapeHTML(false)
	// A string always encodes; validate made sure it is valid UTF-8, so
	// that it decodes back the same.
	enc.Encode(s)
	w.b.Truncate(w.b.Len() - 1) // the newline Encode adds
}
