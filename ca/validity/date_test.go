package validity_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ca/validity"
)

// day returns the date written "YYYY-MM-DD"; for test tables only.
func day(s string) validity.Date {
	d, err := validity.ParseDate(s)
	if err != nil {
		panic("bad test date " + s + ": " + err.Error())
	}
	return d
}

// instant returns the RFC 3339 instant s.
func instant(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic("bad test instant " + s + ": " + err.Error())
	}
	return t
}

func TestNewDate(t *testing.T) {
	cases := []struct {
		name    string
		y       int
		m       time.Month
		d       int
		wantErr string // "" if the date is good
	}{
		{"ordinary", 2026, time.April, 1, ""},
		{"leap day in a leap year", 2024, time.February, 29, ""},
		{"leap day in a year divisible by 400", 2000, time.February, 29, ""},
		{"first year", 1868, time.January, 1, ""},
		{"last day accepted", 9999, time.December, 31, ""},
		{"Feb 29 in a non-leap year", 2023, time.February, 29, "no such day"},
		{"Feb 29 in a century year", 1900, time.February, 29, "no such day"},
		{"Feb 30", 2024, time.February, 30, "no such day"},
		{"Apr 31", 2023, time.April, 31, "no such day"},
		{"day 0", 2023, time.May, 0, "no such day"},
		{"day 32", 2023, time.May, 32, "no such day"},
		{"month 0", 2023, 0, 1, "month outside"},
		{"month 13", 2023, 13, 1, "month outside"},
		{"year before Meiji", 1867, time.December, 31, "year outside"},
		{"five-digit year", 10000, time.January, 1, "year outside"},
		{"zero date", 0, 0, 0, "year outside"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := validity.NewDate(c.y, c.m, c.d)
			if c.wantErr == "" {
				want := validity.Date{Year: c.y, Month: c.m, Day: c.d}
				if err != nil || got != want {
					t.Fatalf("NewDate(%d, %d, %d) = %v, %v; want %v, nil", c.y, c.m, c.d, got, err, want)
				}
				return
			}
			if !errors.Is(err, validity.ErrInvalidDate) || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("NewDate(%d, %d, %d) error = %v; want ErrInvalidDate saying %q", c.y, c.m, c.d, err, c.wantErr)
			}
			if !got.IsZero() {
				t.Errorf("NewDate returned %v with its error, want the zero Date", got)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	good := []string{"2026-04-01", "2024-02-29", "1868-01-01", "9999-12-31", "1990-11-21"}
	for _, s := range good {
		t.Run(s, func(t *testing.T) {
			d, err := validity.ParseDate(s)
			if err != nil {
				t.Fatalf("ParseDate(%q): %v", s, err)
			}
			if d.String() != s {
				t.Fatalf("ParseDate(%q).String() = %q", s, d.String())
			}
		})
	}
	bad := []struct{ name, in string }{
		{"empty", ""},
		{"one-digit month", "2026-4-01"},
		{"one-digit day", "2026-04-1"},
		{"slashes", "2026/04/01"},
		{"no separators", "20260401"},
		{"with a time", "2026-04-01T00:00:00+09:00"},
		{"leading space", " 2026-04-01"},
		{"trailing newline", "2026-04-01\n"},
		{"signed year", "+026-04-01"},
		{"negative year", "-026-04-01"},
		{"letter in month", "2026-0a-01"},
		{"full-width digits", "２０２６-04-01"},
		{"Japanese era date", "R08-04-01"},
		{"Feb 29 in a non-leap year", "2023-02-29"},
		{"Feb 30", "2024-02-30"},
		{"month 13", "2026-13-01"},
		{"month 00", "2026-00-01"},
		{"day 00", "2026-04-00"},
		{"year before Meiji", "1867-12-31"},
		{"year 0000", "0000-01-01"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			d, err := validity.ParseDate(c.in)
			if !errors.Is(err, validity.ErrInvalidDate) {
				t.Fatalf("ParseDate(%q) = %v, %v; want ErrInvalidDate", c.in, d, err)
			}
			// The input may be a date of birth: it must not be in the error (R-P4).
			if len(c.in) >= 4 && strings.Contains(err.Error(), c.in[:4]) {
				t.Errorf("error %q repeats the input %q", err, c.in)
			}
		})
	}
}

func TestDateOf(t *testing.T) {
	est := time.FixedZone("EST", -5*60*60)
	cases := []struct {
		name string
		t    time.Time
		want string
	}{
		{"last second of the JST day", instant("2026-03-31T14:59:59Z"), "2026-03-31"},
		{"last nanosecond of the JST day", instant("2026-03-31T14:59:59.999999999Z"), "2026-03-31"},
		{"midnight JST", instant("2026-03-31T15:00:00Z"), "2026-04-01"},
		{"midnight JST written in JST", instant("2026-04-01T00:00:00+09:00"), "2026-04-01"},
		{"midnight JST written in another zone", time.Date(2026, time.March, 31, 10, 0, 0, 0, est), "2026-04-01"},
		{"new year in Japan, still the old year in UTC", instant("2025-12-31T15:00:00Z"), "2026-01-01"},
		{"leap day", instant("2024-02-28T15:00:00Z"), "2024-02-29"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := validity.DateOf(c.t); got != day(c.want) {
				t.Fatalf("DateOf(%v) = %v, want %s", c.t, got, c.want)
			}
		})
	}
	t.Run("zero time gives the zero date", func(t *testing.T) {
		if got := validity.DateOf(time.Time{}); !got.IsZero() {
			t.Fatalf("DateOf(time.Time{}) = %v, want the zero Date", got)
		}
	})
}

func TestStartAndEndOfDay(t *testing.T) {
	cases := []struct {
		date, start, end string
	}{
		{"2026-04-01", "2026-03-31T15:00:00Z", "2026-04-01T14:59:59Z"},
		{"2031-11-21", "2031-11-20T15:00:00Z", "2031-11-21T14:59:59Z"},
		{"2024-02-29", "2024-02-28T15:00:00Z", "2024-02-29T14:59:59Z"},
		{"2026-01-01", "2025-12-31T15:00:00Z", "2026-01-01T14:59:59Z"},
	}
	for _, c := range cases {
		t.Run(c.date, func(t *testing.T) {
			d := day(c.date)
			if got := d.Start().UTC().Format(time.RFC3339); got != c.start {
				t.Errorf("Start = %s, want %s", got, c.start)
			}
			if got := d.EndOfDay().UTC().Format(time.RFC3339); got != c.end {
				t.Errorf("EndOfDay = %s, want %s", got, c.end)
			}
			if got := d.EndOfDay().Format("15:04:05 MST"); got != "23:59:59 JST" {
				t.Errorf("EndOfDay in its own zone = %s, want 23:59:59 JST", got)
			}
			if DateOf := validity.DateOf; DateOf(d.Start()) != d || DateOf(d.EndOfDay()) != d ||
				DateOf(d.Start().Add(-time.Nanosecond)) != d.AddDays(-1) || DateOf(d.EndOfDay().Add(time.Second)) != d.AddDays(1) {
				t.Errorf("Start and EndOfDay do not bound the JST day %s", d)
			}
		})
	}
}

// TestMachineZoneIrrelevant runs with the process's local zone far from
// Japan: nothing may change.
func TestMachineZoneIrrelevant(t *testing.T) {
	saved := time.Local
	time.Local = time.FixedZone("Baker", -12*60*60)
	defer func() { time.Local = saved }()

	cases := []struct {
		name      string
		got, want string
	}{
		{"DateOf a local time", validity.DateOf(time.Date(2026, time.March, 31, 3, 0, 0, 0, time.Local)).String(), "2026-04-01"},
		{"DateOf a Unix time", validity.DateOf(time.Unix(1774969200, 0)).String(), "2026-04-01"},
		{"EndOfDay", day("2026-04-01").EndOfDay().UTC().Format(time.RFC3339), "2026-04-01T14:59:59Z"},
		{"AddDays across a month", day("2026-03-31").AddDays(1).String(), "2026-04-01"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Fatalf("got %s, want %s", c.got, c.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"2026-04-01", "2026-04-01", 0},
		{"2026-04-01", "2026-04-02", -1},
		{"2026-04-02", "2026-04-01", 1},
		{"2026-03-31", "2026-04-01", -1},
		{"2025-12-31", "2026-01-01", -1},
		{"2027-01-01", "2026-12-31", 1},
	}
	for _, c := range cases {
		t.Run(c.a+" vs "+c.b, func(t *testing.T) {
			a, b := day(c.a), day(c.b)
			if got := a.Compare(b); got != c.want {
				t.Errorf("Compare = %d, want %d", got, c.want)
			}
			if got := b.Compare(a); got != -c.want {
				t.Errorf("reverse Compare = %d, want %d", got, -c.want)
			}
			if a.Before(b) != (c.want < 0) || a.After(b) != (c.want > 0) {
				t.Errorf("Before = %v, After = %v, want Compare %d", a.Before(b), a.After(b), c.want)
			}
		})
	}
}

func TestAddDays(t *testing.T) {
	cases := []struct {
		from string
		n    int
		want string
	}{
		{"2026-04-01", 0, "2026-04-01"},
		{"2026-04-30", 1, "2026-05-01"},
		{"2024-02-28", 1, "2024-02-29"},
		{"2023-02-28", 1, "2023-03-01"},
		{"2025-12-31", 1, "2026-01-01"},
		{"2026-01-01", -1, "2025-12-31"},
		{"2024-03-01", -1, "2024-02-29"},
		{"2024-01-01", 366, "2025-01-01"},
		{"2026-04-01", -365, "2025-04-01"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s%+d", c.from, c.n), func(t *testing.T) {
			if got := day(c.from).AddDays(c.n); got != day(c.want) {
				t.Fatalf("%s.AddDays(%d) = %v, want %s", c.from, c.n, got, c.want)
			}
		})
	}
}

func TestZeroDate(t *testing.T) {
	cases := []struct {
		name string
		d    validity.Date
		zero bool
	}{
		{"zero value", validity.Date{}, true},
		{"a date", day("2026-04-01"), false},
		{"year only", validity.Date{Year: 2026}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.d.IsZero(); got != c.zero {
				t.Fatalf("%v.IsZero() = %v, want %v", c.d, got, c.zero)
			}
		})
	}
}

// FuzzParseDate checks ParseDate against time.Parse with time.DateOnly, and
// that every date it accepts round-trips through String, NewDate and the
// instants of its JST day.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{
		"2026-04-01", "2024-02-29", "2023-02-29", "1868-01-01", "1867-12-31", "9999-12-31",
		"2026-13-01", "2026-4-1", "+026-04-01", "2026-04-01T00:00:00Z", "", "0000-00-00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := validity.ParseDate(s)
		ref, refErr := time.Parse(time.DateOnly, s)
		want := refErr == nil && ref.Year() >= validity.MinYear && ref.Year() <= validity.MaxYear
		if (err == nil) != want {
			t.Fatalf("ParseDate(%q) error = %v; time.Parse error = %v, year %d", s, err, refErr, ref.Year())
		}
		if err != nil {
			if !errors.Is(err, validity.ErrInvalidDate) {
				t.Fatalf("ParseDate(%q) error %v does not wrap ErrInvalidDate", s, err)
			}
			return
		}
		if got := d.String(); got != s {
			t.Fatalf("ParseDate(%q).String() = %q", s, got)
		}
		if again, err := validity.NewDate(d.Year, d.Month, d.Day); err != nil || again != d {
			t.Fatalf("NewDate(%v) = %v, %v", d, again, err)
		}
		if validity.DateOf(d.Start()) != d || validity.DateOf(d.EndOfDay()) != d {
			t.Fatalf("%v: Start or EndOfDay is not in the JST day", d)
		}
		if d.AddDays(1).AddDays(-1) != d || !d.AddDays(1).After(d) {
			t.Fatalf("%v: AddDays does not step one day", d)
		}
	})
}

// TestAddMonths: the same day n months later, or that month's last day.
func TestAddMonths(t *testing.T) {
	for _, c := range []struct {
		from string
		n    int
		want string
	}{
		{"2026-01-31", 1, "2026-02-28"},
		{"2027-11-30", 3, "2028-02-29"},
		{"2026-12-15", 1, "2027-01-15"},
		{"2026-05-31", 12, "2027-05-31"},
		{"2026-03-31", 0, "2026-03-31"},
	} {
		d, err := validity.ParseDate(c.from)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.AddMonths(c.n).String(); got != c.want {
			t.Errorf("%s + %d months = %s, want %s", c.from, c.n, got, c.want)
		}
	}
}
