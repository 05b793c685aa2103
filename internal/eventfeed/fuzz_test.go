package eventfeed

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
)

// problems are every problem an Error may report. The fuzz target checks
// that an error says one of them and nothing else from the line (R-P4).
var problems = []string{
	problemNotUTF8, problemNewline, problemEmpty, problemTooLong, problemNotJSON, problemTruncated, problemNotObject,
	problemTrailing, problemUnknownKey, problemMisspelt, problemHiddenKey, problemRepeatedKey, problemNotString,
	problemNotArray, problemRequired, problemEmptyString, problemRepeated, problemKind, problemField, problemCause,
	problemProfile, problemSerial, problemTime, problemNoProfiles, problemRecordOnly, problemStopOnly, problemErrorOnly,
}

var knownElement = regexp.MustCompile(`^(changed_fields|profiles)\[[0-9]+\]$`)

// FuzzDecode feeds arbitrary lines to Decode: it never panics, its errors
// name a key and a fixed problem and carry nothing else of the line, and
// whatever it accepts, Encode writes back in a form that decodes to the same
// request. `go test` runs the seed corpus (every kind, every malformed line
// of the tests, the documentation's example); CI fuzzes briefly with
// -fuzztime, and longer runs are noted in docs/events-feed.md.
func FuzzDecode(f *testing.F) {
	for _, tc := range validLines {
		f.Add([]byte(tc.line))
	}
	for _, tc := range errorLines {
		// The lines of tens of kilobytes (too long, too deep) would only
		// slow the mutator down; the unit tests have them.
		if len(tc.line) <= 4096 {
			f.Add([]byte(tc.line))
		}
	}
	example, err := os.ReadFile("testdata/example.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	for line := range bytes.Lines(example) {
		f.Add(bytes.TrimSuffix(line, []byte("\n")))
	}

	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := Decode(line)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if !slices.Contains(problems, e.Problem) {
				t.Fatalf("error %q: problem %q is not one of the fixed problems", err, e.Problem)
			}
			switch {
			case e.Key == "", knownKey(e.Key), knownElement.MatchString(e.Key):
			case keyLike.MatchString(e.Key) && e.Problem == problemUnknownKey:
			default:
				t.Fatalf("error %q names %q, which is neither a key of the format nor an unknown key that looks like one", err, e.Key)
			}
			if e.Line != 0 || e.Offset < 0 || e.Offset > int64(len(line)) {
				t.Fatalf("error %q: line %d, offset %d of %d bytes", err, e.Line, e.Offset, len(line))
			}
			return
		}
		again, err := Encode(req)
		if err != nil {
			t.Fatalf("Decode accepted %q as %v, which Encode refuses: %v", line, req, err)
		}
		back, err := Decode(again)
		if err != nil {
			t.Fatalf("Decode refuses what Encode wrote, %q: %v", again, err)
		}
		if !proto.Equal(back, req) {
			t.Fatalf("round trip changed the request:\n%v\n%v", req, back)
		}
		if third, err := Encode(back); err != nil || !bytes.Equal(third, again) {
			t.Fatalf("Encode is not canonical: %q then %q (%v)", again, third, err)
		}
	})
}
