package validity_test

import (
	"errors"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ca/validity"
)

func TestEraCode(t *testing.T) {
	cases := []struct {
		name  string
		birth string
		want  string
	}{
		{"spec example", "1980-12-31", "319801231"},
		{"Meiji, first day (Meiji 1-1-1)", "1868-01-25", "118680125"},
		{"Meiji, day before its proclamation", "1868-10-22", "118681022"},
		{"Meiji, last day", "1912-07-29", "119120729"},
		{"Taisho, first day", "1912-07-30", "219120730"},
		{"Taisho, last day", "1926-12-24", "219261224"},
		{"Showa, first day", "1926-12-25", "319261225"},
		{"Showa, last day", "1989-01-07", "319890107"},
		{"Heisei, first day", "1989-01-08", "419890108"},
		{"Heisei, leap day", "2000-02-29", "420000229"},
		{"Heisei, last day", "2019-04-30", "420190430"},
		{"Reiwa, first day", "2019-05-01", "520190501"},
		{"Reiwa, recent", "2026-04-01", "520260401"},
		{"last date accepted", "9999-12-31", "599991231"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := validity.EraCode(day(c.birth))
			if err != nil || got != c.want {
				t.Fatalf("EraCode(%s) = %q, %v; want %q", c.birth, got, err, c.want)
			}
		})
	}

	bad := []struct {
		name  string
		birth validity.Date
	}{
		{"day before Meiji", validity.Date{Year: 1868, Month: time.January, Day: 24}},
		{"first day of 1868, before Meiji", validity.Date{Year: 1868, Month: time.January, Day: 1}},
		{"1867", validity.Date{Year: 1867, Month: time.December, Day: 31}},
		{"zero date", validity.Date{}},
		{"impossible date", validity.Date{Year: 2023, Month: time.February, Day: 29}},
		{"five-digit year", validity.Date{Year: 10000, Month: time.January, Day: 1}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			got, err := validity.EraCode(c.birth)
			if !errors.Is(err, validity.ErrInvalidDate) || got != "" {
				t.Fatalf("EraCode(%v) = %q, %v; want ErrInvalidDate", c.birth, got, err)
			}
		})
	}
}
