package validity

import (
	"errors"
	"fmt"
	"time"
)

// jst is Japan Standard Time, UTC+9 all year (Japan has no daylight saving
// time): the one JST zone of Shomei. It is a fixed zone, so nothing here
// reads the machine's time zone or needs tzdata. All calendar dates of the
// spec are Japan dates (spec §3); other packages use DateOf and
// Date.Start/EndOfDay rather than a zone of their own.
var jst = time.FixedZone("JST", 9*60*60)

// The range of years NewDate and ParseDate accept: the first year of the
// Meiji era (the earliest date of birth R-P2 can encode) to the last year
// with four digits.
const (
	MinYear = 1868
	MaxYear = 9999
)

// ErrInvalidDate is wrapped by every error about a date that does not exist,
// is badly written, is outside MinYear..MaxYear, or (EraCode) comes before the
// Meiji era. Callers map it to InvalidArgument.
//
// These errors never contain the date itself: the date may be a date of birth,
// which must not reach logs (spec R-P4).
var ErrInvalidDate = errors.New("validity: invalid date")

// Date is a civil date in Japan: a day of the Gregorian calendar, with no time
// and no zone. Its zero value means "no date" (see IsZero).
//
// Dates from NewDate, ParseDate, AddDays and the functions of this package
// always exist. A Date written as a literal is not checked; pass outside data
// through NewDate or ParseDate.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// NewDate returns the date y-m-d. It refuses dates that do not exist
// (2023-02-29, month 13, day 0) and years outside MinYear..MaxYear.
// Spec §3: all validity dates are Japan calendar dates.
func NewDate(y int, m time.Month, d int) (Date, error) {
	if p := problem(y, m, d); p != "" {
		return Date{}, fmt.Errorf("%w: %s", ErrInvalidDate, p)
	}
	return Date{Year: y, Month: m, Day: d}, nil
}

// problem says what makes y-m-d a date NewDate refuses, in words that do not
// repeat the date (ErrInvalidDate), or returns "" if it is a good date.
func problem(y int, m time.Month, d int) string {
	switch {
	case y < MinYear || y > MaxYear:
		return fmt.Sprintf("year outside %d..%d", MinYear, MaxYear)
	case m < time.January || m > time.December:
		return "month outside 1..12"
	case d < 1 || d > daysIn(y, m):
		return "no such day in that month"
	}
	return ""
}

// checkDate returns an error naming the field if d is not a date NewDate
// would accept (ErrInvalidDate).
func checkDate(field string, d Date) error {
	if p := problem(d.Year, d.Month, d.Day); p != "" {
		return fmt.Errorf("%w: %s: %s", ErrInvalidDate, field, p)
	}
	return nil
}

// ParseDate reads a date written exactly as "YYYY-MM-DD" (ASCII digits, no
// sign, no spaces, no time) and checks it as NewDate does. Spec §3.
func ParseDate(s string) (Date, error) {
	if len(s) != len("YYYY-MM-DD") || s[4] != '-' || s[7] != '-' {
		return Date{}, fmt.Errorf("%w: not written as YYYY-MM-DD", ErrInvalidDate)
	}
	y, ok1 := digits(s[0:4])
	m, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 {
		return Date{}, fmt.Errorf("%w: not written as YYYY-MM-DD", ErrInvalidDate)
	}
	return NewDate(y, time.Month(m), d)
}

// digits reads a non-empty run of ASCII digits.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, s != ""
}

// DateOf returns the Japan calendar date of the instant t, whatever t's
// location: 2026-03-31T15:00:00Z is 2026-04-01. The zero time.Time gives the
// zero Date. Spec §3 (Japan dates); callers use it on an injected now.
func DateOf(t time.Time) Date {
	if t.IsZero() {
		return Date{}
	}
	y, m, d := t.In(jst).Date()
	return Date{Year: y, Month: m, Day: d}
}

// String returns the date as "YYYY-MM-DD", the form ParseDate reads.
// Spec §3.
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// IsZero reports whether d is the zero Date, which stands for "no date"
// (R-V5: no current AUTH certificate in ApplyCaps).
func (d Date) IsZero() bool { return d == Date{} }

// Compare returns -1 if d is before o, 0 if they are the same day, +1 if d is
// after o. Spec §3.
func (d Date) Compare(o Date) int {
	switch {
	case d.Year != o.Year:
		return sign(d.Year - o.Year)
	case d.Month != o.Month:
		return sign(int(d.Month) - int(o.Month))
	default:
		return sign(d.Day - o.Day)
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// Before reports whether d is an earlier day than o. Spec §3.
func (d Date) Before(o Date) bool { return d.Compare(o) < 0 }

// After reports whether d is a later day than o. Spec §3.
func (d Date) After(o Date) bool { return d.Compare(o) > 0 }

// AddDays returns the date n days after d (before d if n is negative).
// Spec §3.
func (d Date) AddDays(n int) Date {
	// Noon UTC: no zone and no leap second can move the result to another day.
	y, m, day := time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC).Date()
	return Date{Year: y, Month: m, Day: day}
}

// AddMonths returns the same day n months later (n ≥ 0); a day that month
// lacks (the 31st, Feb 29) becomes its last day.
func (d Date) AddMonths(n int) Date {
	y, m := d.Year+n/12, d.Month+time.Month(n%12)
	if m > time.December {
		y, m = y+1, m-12
	}
	return Date{Year: y, Month: m, Day: min(d.Day, daysIn(y, m))}
}

// Location is Japan's time zone, JST, the one of every Date.
func Location() *time.Location { return jst }

// Start returns the first instant of d in Japan, 00:00:00 JST. Spec §3.
func (d Date) Start() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, jst)
}

// EndOfDay returns 23:59:59 JST of d (14:59:59Z), the certificate notAfter
// for expiry date d (R-P1). The time is in JST; x509 encodes it as UTC.
func (d Date) EndOfDay() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 23, 59, 59, 0, jst)
}

// isLeap reports whether y is a Gregorian leap year (R-V2: Feb 29 births).
func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// daysIn returns the number of days of month m of year y (R-V3: month ends).
func daysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if isLeap(y) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}
