package eventfeed

import (
	"fmt"
	"regexp"
	"strings"
)

// Error is what is wrong with one line of a feed. It names the key at fault
// and never quotes a value (R-P4).
type Error struct {
	// Line is the 1-based line number in the feed; 0 when Decode was given
	// a single line.
	Line int
	// Key is the key at fault, with the index for an array element
	// ("profiles[1]"); empty when the line as a whole is wrong.
	Key string
	// Problem says what is wrong, in words fixed by this package.
	Problem string
	// Offset is the byte offset of a JSON syntax error in the line, 0 when
	// unknown or not applicable.
	Offset int64
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Problem)
	if e.Offset > 0 {
		fmt.Fprintf(&b, " (at byte %d)", e.Offset)
	}
	return b.String()
}

// The problems an Error reports. A problem is a constant: values from the
// feed never go into one.
const (
	problemNotUTF8     = "is not valid UTF-8"
	problemNewline     = "contains a newline: a line holds exactly one event"
	problemEmpty       = "is empty"
	problemTooLong     = "is longer than 65536 bytes" // MaxLineLength
	problemNotJSON     = "is not valid JSON"
	problemTruncated   = "ends before its JSON object does"
	problemNotObject   = "must be a JSON object"
	problemTrailing    = "has data after the JSON object"
	problemUnknownKey  = "is not a key of the format"
	problemMisspelt    = "is misspelt: keys are snake_case and case matters"
	problemHiddenKey   = "has a key that is not in the format (not shown: it does not look like a key)"
	problemRepeatedKey = "appears more than once"
	problemNotString   = "must be a string"
	problemNotArray    = "must be an array of strings"
	problemRequired    = "is required"
	problemEmptyString = "must not be empty"
	problemRepeated    = "repeats an earlier element"
	problemKind        = "must be one of " + kindList
	problemField       = "must be one of " + fieldList
	problemCause       = "must be one of " + causeList
	problemProfile     = "must be one of " + profileList
	problemSerial      = "must be the certificate's serial number: 1-40 hex digits, not all zero"
	problemTime        = "must be an RFC 3339 time with an offset, e.g. 2026-11-21T09:00:00+09:00"
	problemNoProfiles  = "must name at least one profile"
	problemRecordOnly  = "belongs to record_change events only"
	problemStopOnly    = "belongs to stop_using events only"
	problemErrorOnly   = "belongs to record_error events only"
)

// unknownKeyError names an unknown key when it looks like one, so that a
// misspelt key is easy to find, and shows nothing of a line that put data
// where a key goes. A key that differs from a known one only in case or
// in camelCase names the known key.
func unknownKeyError(key string) *Error {
	if known := snakeCase(key); knownKey(known) {
		return keyError(known, problemMisspelt)
	}
	if keyLike.MatchString(key) {
		return keyError(key, problemUnknownKey)
	}
	return lineError(problemHiddenKey)
}

// snakeCase turns effectiveTime, EffectiveTime, EFFECTIVE_TIME or holderID
// into effective_time or holder_id: an underscore goes before a capital
// that follows a lower-case letter or digit.
func snakeCase(key string) string {
	if len(key) > 32 {
		return ""
	}
	var b strings.Builder
	var prev rune
	for _, r := range key {
		lower := r
		if 'A' <= r && r <= 'Z' {
			lower = r + 'a' - 'A'
			if 'a' <= prev && prev <= 'z' || '0' <= prev && prev <= '9' {
				b.WriteByte('_')
			}
		}
		b.WriteRune(lower)
		prev = r
	}
	return b.String()
}

var keyLike = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func lineError(problem string) *Error { return &Error{Problem: problem} }

func keyError(key, problem string) *Error { return &Error{Key: key, Problem: problem} }

func elemError(key string, i int, problem string) *Error {
	return &Error{Key: fmt.Sprintf("%s[%d]", key, i), Problem: problem}
}
