package eventfeed

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// MaxLineLength is the longest line a feed may have, in bytes without its
// line ending. An event line is a few hundred bytes.
const MaxLineLength = 65536

// Decode decodes one line of a feed, without its line ending, into the
// request it stands for. It does not skip blank and comment lines (Reader
// does). Every error is an *Error naming the key at fault.
func Decode(line []byte) (*cav1.ReportEventRequest, error) {
	req, err := decode(line)
	if err != nil {
		return nil, err
	}
	return req, nil
}

func decode(line []byte) (*cav1.ReportEventRequest, *Error) {
	switch {
	case len(line) > MaxLineLength:
		return nil, lineError(problemTooLong)
	case !utf8.Valid(line):
		return nil, lineError(problemNotUTF8)
	case bytes.IndexByte(line, '\n') >= 0:
		return nil, lineError(problemNewline)
	case len(bytes.TrimSpace(line)) == 0:
		return nil, lineError(problemEmpty)
	}

	// The line is exactly one JSON value: syntax first, so that the walk
	// below meets only well-formed JSON.
	dec := json.NewDecoder(bytes.NewReader(line))
	var object json.RawMessage
	if err := dec.Decode(&object); err != nil {
		return nil, syntaxError(err)
	}
	if len(bytes.TrimSpace(line[dec.InputOffset():])) > 0 {
		return nil, lineError(problemTrailing)
	}
	if object = bytes.TrimSpace(object); len(object) == 0 || object[0] != '{' {
		return nil, lineError(problemNotObject)
	}

	req := &cav1.ReportEventRequest{}
	present := map[string]bool{}
	walk := json.NewDecoder(bytes.NewReader(object))
	if _, err := walk.Token(); err != nil { // the '{'
		return nil, lineError(problemNotJSON)
	}
	for walk.More() {
		tok, err := walk.Token()
		if err != nil {
			return nil, lineError(problemNotJSON)
		}
		key, _ := tok.(string)
		if !knownKey(key) {
			return nil, unknownKeyError(key)
		}
		if present[key] {
			return nil, keyError(key, problemRepeatedKey)
		}
		present[key] = true
		var value json.RawMessage
		if err := walk.Decode(&value); err != nil {
			return nil, keyError(key, problemNotJSON)
		}
		if err := setKey(req, key, bytes.TrimSpace(value)); err != nil {
			return nil, err
		}
	}
	if err := validate(req, present); err != nil {
		return nil, err
	}
	return req, nil
}

// syntaxError reports a line that is not one JSON value.
func syntaxError(err error) *Error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return &Error{Problem: problemNotJSON, Offset: se.Offset}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return lineError(problemTruncated)
	}
	return lineError(problemNotJSON)
}

func knownKey(key string) bool {
	switch key {
	case keyEventID, keyMunicipality, keyHolderID, keyKind, keyChangedFields, keyCause, keyProfiles, keySerial, keyEffectiveTime:
		return true
	}
	return false
}

// setKey sets the field of key from its JSON value.
func setKey(req *cav1.ReportEventRequest, key string, value json.RawMessage) *Error {
	switch key {
	case keyChangedFields:
		return eachString(key, value, func(i int, name string) *Error {
			f, ok := valueOf(fields, name)
			switch {
			case !ok:
				return elemError(key, i, problemField)
			case slices.Contains(req.ChangedFields, f):
				return elemError(key, i, problemRepeated)
			}
			req.ChangedFields = append(req.ChangedFields, f)
			return nil
		})
	case keyProfiles:
		return eachString(key, value, func(i int, name string) *Error {
			p, ok := valueOf(profiles, name)
			switch {
			case !ok:
				return elemError(key, i, problemProfile)
			case slices.Contains(req.Profiles, p):
				return elemError(key, i, problemRepeated)
			}
			req.Profiles = append(req.Profiles, p)
			return nil
		})
	}
	s, ok := jsonString(value)
	if !ok {
		return keyError(key, problemNotString)
	}
	switch key {
	case keyEventID:
		req.EventId = s
	case keyMunicipality:
		req.MunicipalityCode = s
	case keyHolderID:
		req.HolderId = s
	case keySerial:
		req.Serial = s
	case keyEffectiveTime:
		req.EffectiveTime = s
	case keyKind:
		if req.Kind, ok = valueOf(kinds, s); !ok {
			return keyError(key, problemKind)
		}
	case keyCause:
		if req.Cause, ok = valueOf(causes, s); !ok {
			return keyError(key, problemCause)
		}
	}
	return nil
}

// jsonString decodes a JSON string; null and other types are not strings.
func jsonString(value json.RawMessage) (string, bool) {
	var s string
	if len(value) == 0 || value[0] != '"' || json.Unmarshal(value, &s) != nil {
		return "", false
	}
	return s, true
}

// eachString calls f with each element of a JSON array of strings, in
// order, until f returns an error. Every element name is short and
// repeats are errors, so a long array fails after a few elements.
func eachString(key string, value json.RawMessage, f func(i int, s string) *Error) *Error {
	if len(value) == 0 || value[0] != '[' {
		return keyError(key, problemNotArray)
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	if _, err := dec.Token(); err != nil { // the '['
		return keyError(key, problemNotJSON)
	}
	for i := 0; dec.More(); i++ {
		var elem json.RawMessage
		if err := dec.Decode(&elem); err != nil {
			return keyError(key, problemNotJSON)
		}
		s, ok := jsonString(bytes.TrimSpace(elem))
		if !ok {
			return elemError(key, i, problemNotString)
		}
		if err := f(i, s); err != nil {
			return err
		}
	}
	return nil
}

var serialPattern = regexp.MustCompile(`^[0-9A-Fa-f]{1,40}$`)

// validate checks a request against the format, given which keys its line
// had (Encode: which fields are set). Decode and Encode share it, so that
// whatever Encode writes, Decode reads back.
func validate(req *cav1.ReportEventRequest, present map[string]bool) *Error {
	for _, f := range []struct{ key, value string }{
		{keyEventID, req.GetEventId()}, {keyMunicipality, req.GetMunicipalityCode()}, {keyHolderID, req.GetHolderId()},
	} {
		if err := required(f.key, f.value, present); err != nil {
			return err
		}
	}
	if !present[keyKind] {
		return keyError(keyKind, problemRequired)
	}
	if _, ok := nameOf(kinds, req.GetKind()); !ok {
		return keyError(keyKind, problemKind)
	}
	if err := required(keyEffectiveTime, req.GetEffectiveTime(), present); err != nil {
		return err
	}
	if _, err := time.Parse(time.RFC3339, req.GetEffectiveTime()); err != nil {
		return keyError(keyEffectiveTime, problemTime)
	}

	kind := req.GetKind()
	recordChange := kind == cav1.EventKind_EVENT_KIND_RECORD_CHANGE
	if present[keyChangedFields] && !recordChange {
		return keyError(keyChangedFields, problemRecordOnly)
	}
	if err := distinct(keyChangedFields, req.GetChangedFields(), fields, problemField); err != nil {
		return err
	}
	if present[keyCause] {
		if !recordChange {
			return keyError(keyCause, problemRecordOnly)
		}
		if _, ok := nameOf(causes, req.GetCause()); !ok {
			return keyError(keyCause, problemCause)
		}
	}

	stopUsing := kind == cav1.EventKind_EVENT_KIND_STOP_USING
	switch {
	case present[keyProfiles] && !stopUsing:
		return keyError(keyProfiles, problemStopOnly)
	case stopUsing && !present[keyProfiles]:
		return keyError(keyProfiles, problemRequired)
	case stopUsing && len(req.GetProfiles()) == 0:
		return keyError(keyProfiles, problemNoProfiles)
	}
	if err := distinct(keyProfiles, req.GetProfiles(), profiles, problemProfile); err != nil {
		return err
	}

	recordError := kind == cav1.EventKind_EVENT_KIND_RECORD_ERROR
	switch {
	case present[keySerial] && !recordError:
		return keyError(keySerial, problemErrorOnly)
	case recordError && !present[keySerial]:
		return keyError(keySerial, problemRequired)
	case recordError && (!serialPattern.MatchString(req.GetSerial()) || strings.Trim(req.GetSerial(), "0") == ""):
		return keyError(keySerial, problemSerial)
	}
	return nil
}

// required checks a required string.
func required(key, value string, present map[string]bool) *Error {
	switch {
	case !present[key]:
		return keyError(key, problemRequired)
	case value == "":
		return keyError(key, problemEmptyString)
	case !utf8.ValidString(value):
		return keyError(key, problemNotUTF8)
	}
	return nil
}

// distinct checks that every element of an array has a name and appears
// once.
func distinct[E comparable](key string, values []E, table []named[E], problem string) *Error {
	for i, v := range values {
		if _, ok := nameOf(table, v); !ok {
			return elemError(key, i, problem)
		}
		for _, before := range values[:i] {
			if before == v {
				return elemError(key, i, problemRepeated)
			}
		}
	}
	return nil
}
