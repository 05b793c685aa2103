package eventfeed

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// read drains a feed into "N ok kind" and "N error" lines, and returns the
// reader's counters.
func read(t *testing.T, r io.Reader) (got []string, lines, skipped int, err error) {
	t.Helper()
	fr := NewReader(r)
	for {
		rec, err := fr.Next()
		var e *Error
		switch {
		case errors.Is(err, io.EOF):
			return got, fr.Lines(), fr.Skipped(), nil
		case errors.As(err, &e):
			got = append(got, e.Error())
		case err != nil:
			return got, fr.Lines(), fr.Skipped(), err
		default:
			name, _ := nameOf(kinds, rec.Request.Kind)
			got = append(got, fmt.Sprintf("%d ok %s", rec.Line, name))
		}
	}
}

func TestReaderLineNumbers(t *testing.T) {
	death := func(id string) string {
		return `{"event_id":"` + id + `","municipality_code":"13221","holder_id":"R-0001","kind":"death","effective_time":"2026-11-21T09:00:00+09:00"}`
	}
	feed := "\xef\xbb\xbf# a comment with a byte order mark before it\n" + // 1
		death("a") + "\r\n" + // 2: CRLF
		"\n" + // 3
		"   \t\n" + // 4
		"  # indented comment\n" + // 5
		`{"event_id":"b","kind":"death"}` + "\n" + // 6: malformed
		`{"event_id":` + strings.Repeat("9", MaxLineLength) + "}\n" + // 7: too long
		death("c") + "\n" + // 8
		`not json at all` + "\n" + // 9
		death("d") // 10: no final newline
	want := []string{
		"2 ok death",
		"line 6: municipality_code: is required",
		"line 7: is longer than 65536 bytes",
		"8 ok death",
		"line 9: is not valid JSON (at byte 2)",
		"10 ok death",
	}
	// One byte at a time as well: line splitting must not depend on how
	// the input arrives.
	for name, r := range map[string]func() io.Reader{
		"whole":        func() io.Reader { return strings.NewReader(feed) },
		"byte by byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(feed)) },
	} {
		t.Run(name, func(t *testing.T) {
			got, lines, skipped, err := read(t, r())
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if lines != 10 || skipped != 4 {
				t.Errorf("Lines %d Skipped %d, want 10 and 4", lines, skipped)
			}
		})
	}
}

func TestReaderEdges(t *testing.T) {
	cases := []struct {
		name, feed string
		lines      int
		want       []string
	}{
		{"empty", "", 0, nil},
		{"one newline", "\n", 1, nil},
		{"long line last, no newline", strings.Repeat("x", MaxLineLength+10), 1, []string{"line 1: is longer than 65536 bytes"}},
		{"longest line allowed", `{"event_id":"` + strings.Repeat("x", MaxLineLength-15) + `"}` + "\r\n", 1, []string{"line 1: municipality_code: is required"}},
		{"one byte too long", `{"event_id":"` + strings.Repeat("x", MaxLineLength-14) + `"}` + "\r\n", 1, []string{"line 1: is longer than 65536 bytes"}},
		{"byte order mark only on line 1", "\n\xef\xbb\xbf# no\n", 2, []string{"line 2: is not valid JSON (at byte 1)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, lines, _, err := read(t, strings.NewReader(tc.feed))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") || lines != tc.lines {
				t.Errorf("got %q after %d lines, want %q after %d", got, lines, tc.want, tc.lines)
			}
		})
	}
}

func TestReaderInputError(t *testing.T) {
	boom := errors.New("disk on fire")
	_, _, _, err := read(t, io.MultiReader(strings.NewReader("# one\n# two"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the input's error", err)
	}
}

// TestExample reads the example of docs/events-feed.md.
func TestExample(t *testing.T) {
	f, err := os.Open("testdata/example.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fr := NewReader(f)
	seen := map[cav1.EventKind]bool{}
	for {
		rec, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[rec.Request.Kind] = true
	}
	if len(seen) != len(kinds) || fr.Lines() != 12 || fr.Skipped() != 3 {
		t.Errorf("example: %d kinds of %d, %d lines, %d skipped", len(seen), len(kinds), fr.Lines(), fr.Skipped())
	}
}
