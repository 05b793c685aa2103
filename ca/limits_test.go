package ca

import (
	"strings"
	"testing"
)

// tooLong counts characters, and refuses by bytes alone only what cannot
// be within the limit even in four-byte characters.
func TestTooLong(t *testing.T) {
	for _, c := range []struct {
		name string
		s    string
		max  int
		want bool
	}{
		{"empty", "", 50, false},
		{"ASCII at the limit", strings.Repeat("a", 50), 50, false},
		{"ASCII over the limit", strings.Repeat("a", 51), 50, true},
		{"kanji at the limit", strings.Repeat("山", 50), 50, false},
		{"kanji over the limit", strings.Repeat("山", 51), 50, true},
		{"four-byte characters at the limit", strings.Repeat("𠮷", 50), 50, false},
		{"four-byte characters over the limit", strings.Repeat("𠮷", 51), 50, true},
		{"invalid UTF-8, one character per byte", strings.Repeat("\xff", 51), 50, true},
		{"megabytes", strings.Repeat("山", 1<<20), 50, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := tooLong(c.s, c.max); got != c.want {
				t.Errorf("tooLong(%d bytes, %d) = %v, want %v", len(c.s), c.max, got, c.want)
			}
		})
	}
}

// The limits agree with the patterns and rules that check the same fields
// later, so that nothing the size checks let through is refused for its
// length by a later rule, and the other way round.
func TestLimitsAgree(t *testing.T) {
	var vs violations
	validateHolderID(&vs, "holder_id", strings.Repeat("h", MaxHolderIDBytes))
	validateMunicipality(&vs, Municipality{Code: "13221", PrefectureRomaji: "T" + strings.Repeat("o", MaxRomajiRunes-1),
		MunicipalityRomaji: "K" + strings.Repeat("i", MaxRomajiRunes-1), Prefecture: strings.Repeat("東", MaxMunicipalityNameRunes),
		Name: strings.Repeat("清", MaxMunicipalityNameRunes)}, true)
	if !eventIDPattern.MatchString(strings.Repeat("e", MaxEventIDBytes)) {
		vs.add("event_id", "R-R1", "refused at its limit")
	}
	if _, err := ParseSerial(strings.Repeat("0", MaxSerialHexBytes-40) + strings.Repeat("f", 39)); err != nil {
		vs.add("serial", "R-P1", "a 20-octet serial with leading zeros refused at its limit")
	}
	for _, v := range vs.list {
		t.Errorf("at its limit: %v", v)
	}
	if MaxNameSubstitutions != MaxSurnameRunes+1+MaxGivenNameRunes || MaxAddressSubstitutions != MaxAddressRunes {
		t.Error("a substitution list holds one entry per character of its text")
	}
}
