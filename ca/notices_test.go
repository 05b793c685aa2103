package ca

import (
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ca/validity"
)

// The span of a renewal notices request: calendar months end on the same
// day, or the month's last when it has no such day; durations count from
// now in Japan time; anything else, or more than 12 months, is refused.
func TestNoticeHorizon(t *testing.T) {
	for _, c := range []struct {
		now, within, want string // want "" : refused
	}{
		{"2030-09-05", "3mo", "2030-12-05"},
		{"2030-11-30", "3mo", "2031-02-28"},
		{"2031-11-30", "3mo", "2032-02-29"},
		{"2030-01-31", "1mo", "2030-02-28"},
		{"2030-12-31", "12mo", "2031-12-31"},
		{"2030-09-05", "2160h", "2030-12-04"},
		{"2030-09-05", "24h", "2030-09-06"},
		{"2030-09-05", "13mo", ""},
		{"2030-09-05", "0mo", ""},
		{"2030-09-05", "+3mo", ""},
		{"2030-09-05", "3MO", ""},
		{"2030-09-05", "0s", ""},
		{"2030-09-05", "8785h", ""},
		{"2030-09-05", "3 months", ""},
	} {
		d, err := validity.ParseDate(c.now)
		if err != nil {
			t.Fatal(err)
		}
		now := d.Start().Add(10 * time.Hour)
		got, ok := noticeHorizon(d, now, c.within)
		switch {
		case c.want == "" && ok:
			t.Errorf("%s + %s: %s, want refused", c.now, c.within, got)
		case c.want != "" && (!ok || got.String() != c.want):
			t.Errorf("%s + %s: %s (%v), want %s", c.now, c.within, got, ok, c.want)
		}
	}
}
