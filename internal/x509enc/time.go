package x509enc

import (
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Times: Shomei's one writer and reader of X.509 Time. RFC 5280 §4.1.2.5 (and §5.1.2.4-6 for CRLs): UTCTime
// YYMMDDHHMMSSZ for the years 1950 through 2049, GeneralizedTime
// YYYYMMDDHHMMSSZ otherwise, always in UTC (Z) and to the second, rounded
// down. encoding/asn1 chooses the same for crypto/x509. An invalidityDate
// is always a GeneralizedTime (§5.3.2).

const (
	UTCTimeLen         = 2 + 13 // a DER UTCTime, tag and length included
	GeneralizedTimeLen = 2 + 15 // a DER GeneralizedTime, tag and length included
)

// utcTimeFrom and utcTimeUntil bound the times written as UTCTime, in Unix
// seconds: 1950-01-01 to 2049-12-31 23:59:59 UTC.
var (
	utcTimeFrom  = time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	utcTimeUntil = time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

// IsUTCTime reports whether t is written as a UTCTime.
func IsUTCTime(t time.Time) bool {
	u := t.Unix() // rounded down: the second t is in
	return utcTimeFrom <= u && u < utcTimeUntil
}

// TimeLen is the length of the DER Time of t, tag and length included.
func TimeLen(t time.Time) int {
	if IsUTCTime(t) {
		return UTCTimeLen
	}
	return GeneralizedTimeLen
}

// AppendTime appends the DER Time of t. t's year (in UTC) must be 0 to
// 9999; AddTime checks it.
func AppendTime(b []byte, t time.Time) []byte {
	if IsUTCTime(t) {
		b = append(b, byte(cbasn1.UTCTime), UTCTimeLen-2)
		return appendDigits(b, t.UTC(), false)
	}
	return AppendGeneralizedTime(b, t)
}

// AppendGeneralizedTime appends the DER GeneralizedTime of t. t's year
// (in UTC) must be 0 to 9999.
func AppendGeneralizedTime(b []byte, t time.Time) []byte {
	b = append(b, byte(cbasn1.GeneralizedTime), GeneralizedTimeLen-2)
	return appendDigits(b, t.UTC(), true)
}

// AddTime adds the DER Time of t to a builder, or sets its error when t's
// year cannot be written.
func AddTime(b *cryptobyte.Builder, t time.Time) {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		b.SetError(fmt.Errorf("x509enc: year %d cannot be written as an X.509 Time", y))
		return
	}
	var scratch [GeneralizedTimeLen]byte
	b.AddBytes(AppendTime(scratch[:0], t))
}

// appendDigits appends [YY]YYMMDDHHMMSSZ of t, four year digits when
// century is set: time.AppendFormat for this one layout, at a fraction of
// its cost (a CRL writes up to two times per entry).
func appendDigits(b []byte, t time.Time, century bool) []byte {
	year, month, day := t.Date()
	hour, minute, second := t.Clock()
	if century {
		b = append2(b, year/100)
	}
	b = append2(b, year%100)
	b = append2(b, int(month))
	b = append2(b, day)
	b = append2(b, hour)
	b = append2(b, minute)
	b = append2(b, second)
	return append(b, 'Z')
}

// append2 appends n, 0 to 99, as two decimal digits.
func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// ReadTime reads an optional Time: present is false when the next field
// is neither a UTCTime nor a GeneralizedTime, ok false when it is one but
// not YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ of a real date and time. utc says
// which of the two it is.
func ReadTime(s *cryptobyte.String) (t time.Time, utc, present, ok bool) {
	var tag cbasn1.Tag
	var value cryptobyte.String
	switch {
	case s.PeekASN1Tag(cbasn1.UTCTime):
		tag, utc = cbasn1.UTCTime, true
	case s.PeekASN1Tag(cbasn1.GeneralizedTime):
		tag = cbasn1.GeneralizedTime
	default:
		return time.Time{}, false, false, true
	}
	if !s.ReadASN1(&value, tag) {
		return time.Time{}, utc, true, false
	}
	t, ok = ParseTime(value, utc)
	return t, utc, true, ok
}

// ParseTime parses the contents of a DER UTCTime (YYMMDDHHMMSSZ, 50-99
// being 1950-1999) or GeneralizedTime (YYYYMMDDHHMMSSZ), in UTC, without
// fractional seconds, as RFC 5280 allows them.
func ParseTime(b []byte, utc bool) (time.Time, bool) {
	n := 15
	if utc {
		n = 13
	}
	if len(b) != n || b[n-1] != 'Z' {
		return time.Time{}, false
	}
	var d [7]int // the two-digit numbers
	for i := range (n - 1) / 2 {
		hi, lo := b[2*i], b[2*i+1]
		if hi < '0' || hi > '9' || lo < '0' || lo > '9' {
			return time.Time{}, false
		}
		d[i] = int(hi-'0')*10 + int(lo-'0')
	}
	year, f := d[0]*100+d[1], d[2:]
	if utc {
		year, f = 1900+d[0], d[1:]
		if d[0] < 50 {
			year += 100
		}
	}
	month, day, hour, minute, second := time.Month(f[0]), f[1], f[2], f[3], f[4]
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, month, day, hour, minute, second, 0, time.UTC)
	return t, t.Day() == day // not 31 April
}
