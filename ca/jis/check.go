package jis

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Offence is a character that needs a substitute: its 0-based position
// counted in runes (Unicode code points), the rune, and suggested substitutes
// (each Allowed), most common first; empty when none is known.
//
// Invalid UTF-8 is reported one offence per invalid byte, with Rune
// utf8.RuneError, exactly as []rune(s) and a range loop over s count it.
type Offence struct {
	Position    int
	Rune        rune
	Suggestions []rune
}

// String describes the offence for the caller that sent the text, e.g.
// `position 2: 髙 (U+9AD9) is not in JIS X 0208/0212; substitute 高 (U+9AD8)`.
// It contains a character of a name or address: return it to the municipal
// system, never log it (R-P4).
func (o Offence) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "position %d: %s is not in JIS X 0208/0212", o.Position, describe(o.Rune))
	writeSuggestions(&b, o.Suggestions)
	return b.String()
}

func writeSuggestions(b *strings.Builder, subs []rune) {
	if len(subs) == 0 {
		b.WriteString("; no common substitute known")
		return
	}
	b.WriteString("; substitute ")
	for i, r := range subs {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString(describe(r))
	}
}

// describe writes a rune as `髙 (U+9AD9)`, or only its code point when
// printing the rune itself would be unreadable or misleading (controls,
// format and combining characters, the replacement character).
func describe(r rune) string {
	switch {
	case r == utf8.RuneError:
		return "U+FFFD (invalid UTF-8 or replacement character)"
	case unicode.IsControl(r):
		return fmt.Sprintf("%U (control character)", r)
	case !utf8.ValidRune(r) || !unicode.IsGraphic(r) || unicode.Is(unicode.M, r):
		return fmt.Sprintf("%U", r)
	}
	return fmt.Sprintf("%c (%U)", r, r)
}

// Check returns every rune of s that is not Allowed, in order, with the
// substitutes Suggest knows for it. It returns nil when s needs no
// substitute. Control characters and invalid UTF-8 are offences too: neither
// is in JIS X 0208/0212.
func Check(s string) []Offence {
	var out []Offence
	pos := 0
	for _, r := range s { // invalid bytes come out one at a time as utf8.RuneError
		if !Allowed(r) {
			out = append(out, Offence{Position: pos, Rune: r, Suggestions: Suggest(r)})
		}
		pos++
	}
	return out
}
