package validity_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ca/validity"
)

func TestExpiry(t *testing.T) {
	cases := []struct {
		name          string
		birth, issued string
		want          string
	}{
		// R-V1
		{"ordinary birthday later in the year", "1990-06-15", "2026-04-01", "2030-06-15"},
		{"ordinary birthday earlier in the year", "1990-02-03", "2026-04-01", "2031-02-03"},
		{"issued on the birthday, which does not count", "1990-11-21", "2026-11-21", "2031-11-21"},
		{"issued the day before a birthday", "1990-11-21", "2026-11-20", "2030-11-21"},
		{"issued the day after a birthday", "1990-11-21", "2026-11-22", "2031-11-21"},
		{"issued on Dec 31, birthday Jan 1", "1985-01-01", "2025-12-31", "2030-01-01"},
		{"issued on Jan 1, birthday Dec 31", "1985-12-31", "2026-01-01", "2030-12-31"},
		{"issued on the day of birth", "2026-04-01", "2026-04-01", "2031-04-01"},
		{"issued on the day before the first birthday", "2026-04-01", "2027-03-31", "2031-04-01"},
		// R-V2: Feb 29 births
		{"Feb 29 birth, expiry in a non-leap year is Feb 28", "2000-02-29", "2026-04-01", "2031-02-28"},
		{"Feb 29 birth, expiry in a leap year is Feb 29", "2000-02-29", "2027-03-01", "2032-02-29"},
		{"Feb 29 birth, issued on Feb 28 of a non-leap year: a birthday, does not count", "2000-02-29", "2027-02-28", "2032-02-29"},
		{"Feb 29 birth, issued on Feb 27 of a non-leap year", "2000-02-29", "2027-02-27", "2031-02-28"},
		{"Feb 29 birth, issued on Feb 28 of a leap year: not a birthday", "2000-02-29", "2028-02-28", "2032-02-29"},
		{"Feb 29 birth, issued on Feb 29", "2000-02-29", "2028-02-29", "2033-02-28"},
		{"Feb 29 birth, issued on the day of birth", "2028-02-29", "2028-02-29", "2033-02-28"},
		{"Feb 28 birth, issued on Feb 29", "2000-02-28", "2028-02-29", "2033-02-28"},
		{"Mar 1 birth, issued on Feb 29", "2000-03-01", "2028-02-29", "2032-03-01"},
		{"Feb 29 birth, expiry in a century year that is not leap", "1992-02-29", "2095-06-01", "2100-02-28"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := validity.Expiry(day(c.birth), day(c.issued)); got != day(c.want) {
				t.Fatalf("Expiry(born %s, issued %s) = %v, want %s", c.birth, c.issued, got, c.want)
			}
		})
	}
}

// births used by the exhaustive tests: month ends, year ends and Feb 29.
var births = []string{"2000-02-29", "1999-02-28", "1999-03-01", "1990-11-21", "1985-12-31", "1985-01-01", "1970-05-31", "2026-06-30"}

// TestExpiryAgainstCalendarWalk checks Expiry for every issuance day of 2027
// and 2028 against birthdays found by walking the calendar day by day, with
// R-V2 written independently: a Feb 29 person's birthday is Feb 29, or Feb 28
// when Mar 1 follows it.
func TestExpiryAgainstCalendarWalk(t *testing.T) {
	for _, b := range births {
		t.Run(b, func(t *testing.T) {
			birth := day(b)
			var birthdays []validity.Date
			for d := birth.AddDays(1); d.Year <= 2040; d = d.AddDays(1) {
				feb29 := birth.Month == time.February && birth.Day == 29
				if d.Month == birth.Month && d.Day == birth.Day ||
					feb29 && d.Month == time.February && d.Day == 28 && d.AddDays(1).Month == time.March {
					birthdays = append(birthdays, d)
				}
			}
			for issued := day("2027-01-01"); issued.Year <= 2028; issued = issued.AddDays(1) {
				if issued.Before(birth) {
					continue
				}
				var want validity.Date
				n := 0
				for _, bd := range birthdays {
					if bd.After(issued) {
						if n++; n == 5 {
							want = bd
							break
						}
					}
				}
				if got := validity.Expiry(birth, issued); got != want {
					t.Fatalf("Expiry(born %s, issued %s) = %v, want %v", birth, issued, got, want)
				}
			}
		})
	}
}

func TestNthBirthdayAfter(t *testing.T) {
	cases := []struct {
		name        string
		birth, from string
		n           int
		want        string
	}{
		{"first, later this year", "1990-11-21", "2026-04-01", 1, "2026-11-21"},
		{"first, from the birthday itself", "1990-11-21", "2026-11-21", 1, "2027-11-21"},
		{"sixth, from the day before a birthday", "1990-11-21", "2026-11-20", 6, "2031-11-21"},
		{"first, from before the birth", "2026-04-01", "2020-01-01", 1, "2027-04-01"},
		{"first, Feb 29 birth in a non-leap year", "2000-02-29", "2027-01-01", 1, "2027-02-28"},
		{"second, Feb 29 birth from a non-leap Feb 28", "2000-02-29", "2027-02-28", 2, "2029-02-28"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := validity.NthBirthdayAfter(day(c.birth), day(c.from), c.n); got != day(c.want) {
				t.Fatalf("NthBirthdayAfter(%s, %s, %d) = %v, want %s", c.birth, c.from, c.n, got, c.want)
			}
		})
	}
	t.Run("n below 1 panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("NthBirthdayAfter with n = 0 did not panic")
			}
		}()
		validity.NthBirthdayAfter(day("1990-11-21"), day("2026-04-01"), 0)
	})
}

func TestBirthdayIn(t *testing.T) {
	cases := []struct {
		birth string
		year  int
		want  string
	}{
		{"1990-11-21", 2026, "2026-11-21"},
		{"2000-02-29", 2027, "2027-02-28"},
		{"2000-02-29", 2028, "2028-02-29"},
		{"2000-02-29", 2100, "2100-02-28"},
		{"1996-02-29", 2000, "2000-02-29"},
		{"2000-02-28", 2028, "2028-02-28"},
		{"2000-03-01", 2027, "2027-03-01"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s in %d", c.birth, c.year), func(t *testing.T) {
			if got := validity.BirthdayIn(day(c.birth), c.year); got != day(c.want) {
				t.Fatalf("BirthdayIn(%s, %d) = %v, want %s", c.birth, c.year, got, c.want)
			}
		})
	}
}

func TestAge(t *testing.T) {
	cases := []struct {
		name      string
		birth, on string
		want      int
	}{
		// R-A3: the 14/15 boundary
		{"day before the 15th birthday", "2011-06-10", "2026-06-09", 14},
		{"on the 15th birthday", "2011-06-10", "2026-06-10", 15},
		{"day after the 15th birthday", "2011-06-10", "2026-06-11", 15},
		{"day before the 15th birthday, across a year", "2011-01-01", "2025-12-31", 14},
		{"on the 15th birthday, Jan 1", "2011-01-01", "2026-01-01", 15},
		// R-V2: Feb 29 births reach the new age on Mar 1 in non-leap years
		{"Feb 29 birth on Feb 28 of a non-leap year", "2004-02-29", "2019-02-28", 14},
		{"Feb 29 birth on Mar 1 of a non-leap year", "2004-02-29", "2019-03-01", 15},
		{"Feb 29 birth on Feb 28 of a leap year", "2004-02-29", "2020-02-28", 15},
		{"Feb 29 birth on Feb 29 of a leap year", "2004-02-29", "2020-02-29", 16},
		{"Feb 29 birth turning 15, Feb 28", "2012-02-29", "2027-02-28", 14},
		{"Feb 29 birth turning 15, Mar 1", "2012-02-29", "2027-03-01", 15},
		// edges
		{"on the day of birth", "2026-04-01", "2026-04-01", 0},
		{"day before the first birthday", "2026-04-01", "2027-03-31", 0},
		{"before birth", "2026-04-01", "2026-03-31", -1},
		{"centenarian", "1926-12-25", "2026-12-25", 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := validity.Age(day(c.birth), day(c.on)); got != c.want {
				t.Fatalf("Age(born %s, on %s) = %d, want %d", c.birth, c.on, got, c.want)
			}
		})
	}
}

func TestRenewalWindowOpens(t *testing.T) {
	cases := []struct {
		name         string
		expiry       string
		livingAbroad bool
		want         string
	}{
		{"spec example, mid-month", "2023-06-15", false, "2023-03-16"},
		// Month ends, non-leap year: Feb 28 exists, Feb 29..31 do not.
		{"2023 May 28: Feb 28 exists", "2023-05-28", false, "2023-03-01"},
		{"2023 May 29: no Feb 29", "2023-05-29", false, "2023-03-01"},
		{"2023 May 30: no Feb 30", "2023-05-30", false, "2023-03-01"},
		{"2023 May 31: no Feb 31", "2023-05-31", false, "2023-03-01"},
		// Leap year: Feb 28 and 29 exist.
		{"2024 May 28: Feb 28 exists", "2024-05-28", false, "2024-02-29"},
		{"2024 May 29: Feb 29 exists", "2024-05-29", false, "2024-03-01"},
		{"2024 May 30: no Feb 30", "2024-05-30", false, "2024-03-01"},
		{"2024 May 31: no Feb 31", "2024-05-31", false, "2024-03-01"},
		{"Jun 1 after the month-end run", "2023-06-01", false, "2023-03-02"},
		{"across a year: Mar 31", "2023-03-31", false, "2023-01-01"},
		{"across a year: Jan 31", "2024-01-31", false, "2023-11-01"},
		{"Dec 31: no Sep 31", "2023-12-31", false, "2023-10-01"},
		{"expiry on Feb 29", "2028-02-29", false, "2027-11-30"},
		{"expiry on Feb 28", "2027-02-28", false, "2026-11-29"},
		// Living abroad: 1 year.
		{"abroad, mid-month", "2026-11-21", true, "2025-11-22"},
		{"abroad, expiry on Feb 29: no Feb 29 a year before", "2028-02-29", true, "2027-03-01"},
		{"abroad, expiry on Feb 28 after a leap year", "2029-02-28", true, "2028-02-29"},
		{"abroad, expiry on Feb 28 before a leap year", "2027-02-28", true, "2026-03-01"},
		{"abroad, expiry on Mar 1 of a leap year", "2028-03-01", true, "2027-03-02"},
		{"abroad, across a year", "2025-12-31", true, "2025-01-01"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := validity.RenewalWindowOpens(day(c.expiry), c.livingAbroad); got != day(c.want) {
				t.Fatalf("RenewalWindowOpens(%s, abroad %v) = %v, want %s", c.expiry, c.livingAbroad, got, c.want)
			}
		})
	}
}

// TestRenewalWindowShape checks every expiry date of 2020–2035: the window
// opens no earlier as the expiry date moves later, and it is about 3 months
// (89–92 days) or, living abroad, 1 year (365–366 days) long, both ends
// counted.
func TestRenewalWindowShape(t *testing.T) {
	for _, abroad := range []bool{false, true} {
		t.Run(fmt.Sprintf("abroad %v", abroad), func(t *testing.T) {
			minLen, maxLen := 89, 92
			if abroad {
				minLen, maxLen = 365, 366
			}
			prev := validity.Date{}
			for expiry := day("2020-01-01"); expiry.Year <= 2035; expiry = expiry.AddDays(1) {
				opens := validity.RenewalWindowOpens(expiry, abroad)
				if opens.Before(prev) {
					t.Fatalf("expiry %v opens on %v, before the previous day's %v", expiry, opens, prev)
				}
				prev = opens
				n := 0
				for d := opens; !d.After(expiry); d = d.AddDays(1) {
					n++
				}
				if n < minLen || n > maxLen {
					t.Fatalf("expiry %v: window from %v is %d days, want %d..%d", expiry, opens, n, minLen, maxLen)
				}
			}
		})
	}
}

func TestRenewalExpiry(t *testing.T) {
	cases := []struct {
		name                      string
		birth, oldExpiry, renewal string
		livingAbroad              bool
		want                      string // expiry, or "" for an error
		wantErr                   error
		wantInErr                 string
	}{
		// Old expiry on a birthday, window opens 2026-08-22.
		{"first day of the window", "1990-11-21", "2026-11-21", "2026-08-22", false, "2031-11-21", nil, ""},
		{"day before the window", "1990-11-21", "2026-11-21", "2026-08-21", false, "", validity.ErrWindowNotOpen, "opens on 2026-08-22"},
		{"inside the window", "1990-11-21", "2026-11-21", "2026-10-01", false, "2031-11-21", nil, ""},
		{"day before expiry: 6th birthday", "1990-11-21", "2026-11-21", "2026-11-20", false, "2031-11-21", nil, ""},
		{"on the expiry date: 5th birthday, the same day", "1990-11-21", "2026-11-21", "2026-11-21", false, "2031-11-21", nil, ""},
		{"day after expiry", "1990-11-21", "2026-11-21", "2026-11-22", false, "", validity.ErrExpired, ""},
		{"long after expiry", "1990-11-21", "2026-11-21", "2028-01-01", false, "", validity.ErrExpired, ""},
		{"long before the window", "1990-11-21", "2026-11-21", "2022-11-21", false, "", validity.ErrWindowNotOpen, "opens on 2026-08-22"},
		// Old expiry not on a birthday (it had been capped by the card).
		{"capped old expiry, inside the window: 6th birthday", "1990-11-21", "2026-06-30", "2026-05-01", false, "2031-11-21", nil, ""},
		{"capped old expiry, on the expiry date: 5th birthday", "1990-11-21", "2026-06-30", "2026-06-30", false, "2030-11-21", nil, ""},
		// Month-end window.
		{"expiry May 31, window opens Mar 1", "1970-05-31", "2023-05-31", "2023-03-01", false, "2028-05-31", nil, ""},
		{"expiry May 31, Feb 28 is before the window", "1970-05-31", "2023-05-31", "2023-02-28", false, "", validity.ErrWindowNotOpen, "opens on 2023-03-01"},
		// Feb 29 person, old expiry Feb 28 of a non-leap year (window opens 2026-11-29).
		{"Feb 29 person, inside the window", "2000-02-29", "2027-02-28", "2027-01-10", false, "2032-02-29", nil, ""},
		{"Feb 29 person, on the Feb 28 expiry date", "2000-02-29", "2027-02-28", "2027-02-28", false, "2032-02-29", nil, ""},
		{"Feb 29 person, day before the window", "2000-02-29", "2027-02-28", "2026-11-28", false, "", validity.ErrWindowNotOpen, "opens on 2026-11-29"},
		{"Feb 29 person, Mar 1 after expiry", "2000-02-29", "2027-02-28", "2027-03-01", false, "", validity.ErrExpired, ""},
		// Feb 29 person, old expiry Feb 29 (window opens 2027-11-30).
		{"Feb 29 person, leap-year expiry, inside the window", "2000-02-29", "2028-02-29", "2027-12-01", false, "2033-02-28", nil, ""},
		{"Feb 29 person, on the Feb 29 expiry date", "2000-02-29", "2028-02-29", "2028-02-29", false, "2033-02-28", nil, ""},
		// Living abroad: 1 year.
		{"abroad, first day of the window", "1990-11-21", "2026-11-21", "2025-11-22", true, "2031-11-21", nil, ""},
		{"abroad, the day before: the previous birthday", "1990-11-21", "2026-11-21", "2025-11-21", true, "", validity.ErrWindowNotOpen, "opens on 2025-11-22"},
		{"not abroad, same day: window not open", "1990-11-21", "2026-11-21", "2025-11-22", false, "", validity.ErrWindowNotOpen, "opens on 2026-08-22"},
		{"abroad, Feb 29 expiry, window opens Mar 1", "2000-02-29", "2028-02-29", "2027-03-01", true, "2033-02-28", nil, ""},
		{"abroad, Feb 29 expiry, Feb 28 is before the window", "2000-02-29", "2028-02-29", "2027-02-28", true, "", validity.ErrWindowNotOpen, "opens on 2027-03-01"},
		{"abroad, Feb 28 expiry, window opens on Feb 29, a birthday", "2000-02-29", "2029-02-28", "2028-02-29", true, "2034-02-28", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := validity.RenewalExpiry(day(c.birth), day(c.oldExpiry), day(c.renewal), c.livingAbroad)
			if c.wantErr == nil {
				if err != nil || got != day(c.want) {
					t.Fatalf("RenewalExpiry = %v, %v; want %s", got, err, c.want)
				}
				return
			}
			if !errors.Is(err, c.wantErr) || !strings.Contains(err.Error(), c.wantInErr) {
				t.Fatalf("RenewalExpiry = %v, %v; want error %v saying %q", got, err, c.wantErr, c.wantInErr)
			}
			if !got.IsZero() {
				t.Errorf("RenewalExpiry returned %v with its error, want the zero Date", got)
			}
			if strings.Contains(err.Error(), c.birth) {
				t.Errorf("error %q contains the date of birth (R-P4)", err)
			}
		})
	}
	invalid := []struct {
		name                      string
		birth, oldExpiry, renewal validity.Date
		field                     string
	}{
		{"zero date of birth", validity.Date{}, day("2026-11-21"), day("2026-10-01"), "date of birth"},
		{"impossible old expiry", day("1990-11-21"), validity.Date{Year: 2027, Month: time.February, Day: 29}, day("2026-10-01"), "old expiry date"},
		{"impossible renewal date", day("1990-11-21"), day("2026-11-21"), validity.Date{Year: 2026, Month: time.September, Day: 31}, "renewal date"},
	}
	for _, c := range invalid {
		t.Run(c.name, func(t *testing.T) {
			got, err := validity.RenewalExpiry(c.birth, c.oldExpiry, c.renewal, false)
			if !errors.Is(err, validity.ErrInvalidDate) || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("RenewalExpiry = %v, %v; want ErrInvalidDate naming %q", got, err, c.field)
			}
		})
	}
}

// TestRenewalLosesNoTime checks R-V4's promise for every day of every window:
// when the old expiry date is a birthday, a renewal on any day of its window
// gets the birthday five years after it, and the days just outside the window
// are refused.
func TestRenewalLosesNoTime(t *testing.T) {
	for _, b := range births {
		for _, abroad := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s abroad %v", b, abroad), func(t *testing.T) {
				birth := day(b)
				for y := max(2026, birth.Year+1); y <= 2034; y++ {
					oldExpiry := validity.BirthdayIn(birth, y)
					want := validity.BirthdayIn(birth, y+5)
					opens := validity.RenewalWindowOpens(oldExpiry, abroad)
					for r := opens; !r.After(oldExpiry); r = r.AddDays(1) {
						got, err := validity.RenewalExpiry(birth, oldExpiry, r, abroad)
						if err != nil || got != want {
							t.Fatalf("renewal on %v of expiry %v = %v, %v; want %v", r, oldExpiry, got, err, want)
						}
					}
					if _, err := validity.RenewalExpiry(birth, oldExpiry, opens.AddDays(-1), abroad); !errors.Is(err, validity.ErrWindowNotOpen) {
						t.Fatalf("renewal on %v, the day before the window of %v: %v", opens.AddDays(-1), oldExpiry, err)
					}
					if _, err := validity.RenewalExpiry(birth, oldExpiry, oldExpiry.AddDays(1), abroad); !errors.Is(err, validity.ErrExpired) {
						t.Fatalf("renewal the day after expiry %v: %v", oldExpiry, err)
					}
				}
			})
		}
	}
}

func TestApplyCaps(t *testing.T) {
	cases := []struct {
		name               string
		expiry, card, auth string // "" for the zero Date
		want               string
		wantCap            validity.Cap
	}{
		{"neither", "2031-11-21", "", "", "2031-11-21", validity.CapNone},
		{"both later", "2031-11-21", "2035-11-21", "2032-01-01", "2031-11-21", validity.CapNone},
		{"card cap", "2031-11-21", "2030-03-31", "", "2030-03-31", validity.CapCard},
		{"card on the expiry date: no cap", "2031-11-21", "2031-11-21", "", "2031-11-21", validity.CapNone},
		{"AUTH cap", "2031-11-21", "2035-11-21", "2029-06-15", "2029-06-15", validity.CapAuth},
		{"AUTH cap, no card given", "2031-11-21", "", "2029-06-15", "2029-06-15", validity.CapAuth},
		{"both, card earlier", "2031-11-21", "2028-01-01", "2029-06-15", "2028-01-01", validity.CapCard},
		{"both, AUTH earlier", "2031-11-21", "2030-01-01", "2029-06-15", "2029-06-15", validity.CapAuth},
		{"both on the same day: card reported", "2031-11-21", "2029-06-15", "2029-06-15", "2029-06-15", validity.CapCard},
		{"AUTH on the expiry date: no cap", "2031-11-21", "2035-11-21", "2031-11-21", "2031-11-21", validity.CapNone},
	}
	opt := func(s string) validity.Date {
		if s == "" {
			return validity.Date{}
		}
		return day(s)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, gotCap := validity.ApplyCaps(day(c.expiry), opt(c.card), opt(c.auth))
			if got != day(c.want) || gotCap != c.wantCap {
				t.Fatalf("ApplyCaps(%s, card %q, auth %q) = %v, %v; want %s, %v", c.expiry, c.card, c.auth, got, gotCap, c.want, c.wantCap)
			}
		})
	}
}

func TestStatusAt(t *testing.T) {
	notAfter := day("2031-11-21").EndOfDay() // 2031-11-21T14:59:59Z
	cases := []struct {
		name    string
		revoked bool
		now     time.Time
		want    validity.Status
	}{
		{"long before notAfter", false, instant("2027-01-01T00:00:00Z"), validity.StatusValid},
		{"exactly at notAfter", false, instant("2031-11-21T14:59:59Z"), validity.StatusValid},
		{"within notAfter's second", false, instant("2031-11-21T14:59:59.999999999Z"), validity.StatusValid},
		{"one second after notAfter", false, instant("2031-11-21T15:00:00Z"), validity.StatusExpired},
		{"one second after, written in JST", false, instant("2031-11-22T00:00:00+09:00"), validity.StatusExpired},
		{"revoked before expiry", true, instant("2027-01-01T00:00:00Z"), validity.StatusRevoked},
		{"revoked, at notAfter", true, instant("2031-11-21T14:59:59Z"), validity.StatusRevoked},
		{"revoked and expired: revoked wins", true, instant("2032-01-01T00:00:00Z"), validity.StatusRevoked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := validity.StatusAt(notAfter, c.revoked, c.now); got != c.want {
				t.Fatalf("StatusAt(%v, revoked %v, %v) = %v, want %v", notAfter, c.revoked, c.now, got, c.want)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	cases := []struct {
		got  fmt.Stringer
		want string
	}{
		{validity.StatusValid, "VALID"},
		{validity.StatusRevoked, "REVOKED"},
		{validity.StatusExpired, "EXPIRED"},
		{validity.Status(0), "Status(0)"},
		{validity.CapNone, "NONE"},
		{validity.CapCard, "CARD"},
		{validity.CapAuth, "AUTH"},
		{validity.Cap(9), "Cap(9)"},
		{day("2026-04-01"), "2026-04-01"},
		{day("1868-01-01"), "1868-01-01"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if s := c.got.String(); s != c.want {
				t.Fatalf("String() = %q, want %q", s, c.want)
			}
		})
	}
}
