package validity_test

import (
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ca/validity"
)

// TestLive pins the one expiry rule at the boundary: a certificate expiring
// on 2031-11-21 has notAfter 23:59:59 JST (14:59:59Z) and is live through
// the whole of that second (RFC 5280 validity is inclusive, R-P1, R-V6).
func TestLive(t *testing.T) {
	notAfter := day("2031-11-21").EndOfDay()
	cases := []struct {
		name string
		now  time.Time
		want bool
	}{
		{"a day before", instant("2031-11-20T23:59:59+09:00"), true},
		{"23:59:58 JST", instant("2031-11-21T23:59:58+09:00"), true},
		{"23:59:59 JST, notAfter itself", instant("2031-11-21T23:59:59+09:00"), true},
		{"23:59:59.999999 JST", instant("2031-11-21T23:59:59.999999+09:00"), true},
		{"23:59:59.999999999 JST", instant("2031-11-21T23:59:59.999999999+09:00"), true},
		{"00:00:00 JST the next day", instant("2031-11-22T00:00:00+09:00"), false},
		{"00:00:00 the next day, written in UTC", instant("2031-11-21T15:00:00Z"), false},
		{"a year later", instant("2032-11-21T12:00:00+09:00"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := validity.Live(notAfter, c.now); got != c.want {
				t.Errorf("Live(%v, %v) = %v, want %v", notAfter, c.now, got, c.want)
			}
			if got := validity.Expired(notAfter, c.now); got == c.want {
				t.Errorf("Expired(%v, %v) = %v, want %v", notAfter, c.now, got, !c.want)
			}
			want := validity.StatusExpired
			if c.want {
				want = validity.StatusValid
			}
			if got := validity.StatusAt(notAfter, false, c.now); got != want {
				t.Errorf("StatusAt(%v, unrevoked, %v) = %v, want %v: it must follow Live", notAfter, c.now, got, want)
			}
		})
	}
}

// TestLiveNotAfterFraction: a notAfter that carries a fraction (read from
// somewhere that kept one) is judged by its whole second, like X.509.
func TestLiveNotAfterFraction(t *testing.T) {
	notAfter := instant("2031-11-21T14:59:59.5Z")
	if !validity.Live(notAfter, instant("2031-11-21T14:59:59.9Z")) {
		t.Error("not live later in notAfter's second")
	}
	if validity.Live(notAfter, instant("2031-11-21T15:00:00Z")) {
		t.Error("live after notAfter's second")
	}
}
