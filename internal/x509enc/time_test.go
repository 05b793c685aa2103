package x509enc

import (
	"bytes"
	"encoding/asn1"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// TestTimeBoundaries: UTCTime from 1950 through 2049, GeneralizedTime
// before and after, in UTC to the second (RFC 5280 §4.1.2.5), as
// encoding/asn1 writes a time.Time; and ReadTime reads each back.
func TestTimeBoundaries(t *testing.T) {
	jst := time.FixedZone("JST", 9*60*60)
	for _, tc := range []struct {
		name string
		t    time.Time
		utc  bool
		der  string
	}{
		{"last second of 1949", time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC), false, "19491231235959Z"},
		{"first second of 1950", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), true, "500101000000Z"},
		{"1950 written in JST", time.Date(1950, 1, 1, 8, 59, 59, 0, jst), false, "19491231235959Z"},
		{"last second of 2049", time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC), true, "491231235959Z"},
		{"a fraction before 2050", time.Date(2049, 12, 31, 23, 59, 59, 999999999, time.UTC), true, "491231235959Z"},
		{"first second of 2050", time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), false, "20500101000000Z"},
		{"2050 written in JST", time.Date(2050, 1, 1, 9, 0, 0, 0, jst), false, "20500101000000Z"},
		{"an expiry notAfter", time.Date(2031, 5, 1, 23, 59, 59, 0, jst), true, "310501145959Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if IsUTCTime(tc.t) != tc.utc {
				t.Errorf("IsUTCTime = %v", !tc.utc)
			}
			got := AppendTime(nil, tc.t)
			if string(got[2:]) != tc.der || len(got) != TimeLen(tc.t) {
				t.Errorf("AppendTime = %q (%d octets), want %q", got, len(got), tc.der)
			}
			want, err := asn1.Marshal(tc.t.Truncate(time.Second).UTC())
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("AppendTime %x, encoding/asn1 %x", got, want)
			}
			var b cryptobyte.Builder
			AddTime(&b, tc.t)
			if added, err := b.Bytes(); err != nil || !bytes.Equal(added, got) {
				t.Errorf("AddTime %x, %v", added, err)
			}
			in := cryptobyte.String(got)
			back, utc, present, ok := ReadTime(&in)
			if !present || !ok || utc != tc.utc || !back.Equal(tc.t.Truncate(time.Second)) || !in.Empty() {
				t.Errorf("ReadTime = %v, %v, %v, %v", back, utc, present, ok)
			}
			g := AppendGeneralizedTime(nil, tc.t)
			if gen, _ := asn1.MarshalWithParams(tc.t.Truncate(time.Second).UTC(), "generalized"); !bytes.Equal(g, gen) {
				t.Errorf("AppendGeneralizedTime %x, encoding/asn1 %x", g, gen)
			}
		})
	}
	var b cryptobyte.Builder
	AddTime(&b, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	if _, err := b.Bytes(); err == nil {
		t.Error("AddTime of the year 10000: no error")
	}
}

// TestParseTime refuses what RFC 5280 does not allow.
func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in  string
		utc bool
		ok  bool
	}{
		{"260201010000Z", true, true},
		{"20260201010000Z", false, true},
		{"260431010000Z", true, false},     // 31 April
		{"2602010100Z", true, false},       // no seconds
		{"260201010000+0900", true, false}, // not UTC
		{"20260201010000.5Z", false, false},
		{"261301010000Z", true, false},
		{"260201240000Z", true, false},
		{"2602010100a0Z", true, false},
	} {
		if _, ok := ParseTime([]byte(tc.in), tc.utc); ok != tc.ok {
			t.Errorf("ParseTime(%q) ok = %v", tc.in, ok)
		}
	}
	in := cryptobyte.String{0x02, 0x01, 0x00}
	if _, _, present, ok := ReadTime(&in); present || !ok {
		t.Error("ReadTime of an INTEGER: present")
	}
}
