package ca

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/ca/validity"
	"github.com/shomei-pki/shomei/internal/metricstest"
)

func date(t *testing.T, s string) validity.Date {
	t.Helper()
	d, err := validity.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The longest certificate of a day is the 6th birthday after it (R-V4).
func TestLongestExpiry(t *testing.T) {
	for _, tc := range []struct{ day, want string }{
		{"2030-11-21", "2036-11-21"},
		{"2028-02-29", "2034-02-28"}, // born on Feb 29: the birthday is Feb 28 in other years (R-V2)
		{"2027-12-31", "2033-12-31"},
	} {
		if got := longestExpiry(date(t, tc.day)); got.String() != tc.want {
			t.Errorf("longestExpiry(%s) = %s, want %s", tc.day, got, tc.want)
		}
	}
}

// The warning appears a year before the last issuance day, names the day
// refusals start, and that day is the one where R-V7's rule (outlives)
// starts to refuse the longest certificate.
func TestRotationWarning(t *testing.T) {
	// The ceremony's issuer: 10:00 JST 2026-11-21 to 10:00 JST 2036-11-21.
	iss := &x509.Certificate{NotAfter: at(t, "2036-11-21")}
	last := lastIssuanceDay(iss)
	if last.String() != "2030-11-20" {
		t.Errorf("last issuance day %s, want 2030-11-20 (its longest certificate ends 2036-11-20 23:59:59 JST)", last)
	}
	if !outlives(iss, longestExpiry(last)) || outlives(iss, longestExpiry(last.AddDays(1))) {
		t.Error("the last issuance day is not where R-V7 starts refusing")
	}
	for _, tc := range []struct {
		now  string
		want string // "" for none
	}{
		{"2026-11-21", ""},
		{"2029-11-19", ""},
		{"2029-11-20", "rotate before 2030-11-21"},
		{"2031-01-01", "from 2030-11-21 on"},
	} {
		got := rotationWarning("sign-g1", iss, at(t, tc.now))
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("on %s: warning %q, want %q", tc.now, got, tc.want)
		}
		if got != "" && (!strings.HasPrefix(got, "R-V7: sign-g1 ends on 2036-11-21")) {
			t.Errorf("warning %q does not name the rule, the issuer and its end", got)
		}
	}
}

// shomei_issuer_remaining_seconds follows the live set of generations.
func TestRemainingLifeGauge(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCA(t, caOptions{})
	c.CA.metrics = m
	c.observeIssuers(c.gens.Load())
	gauge := func() map[string]float64 {
		t.Helper()
		out := map[string]float64{}
		for labels, v := range metricstest.Of(t, reg, "shomei_issuer_remaining_seconds") {
			out[strings.TrimSuffix(strings.TrimPrefix(labels, `issuer="`), `"`)] = v
		}
		return out
	}
	tenYears := at(t, "2036-11-21").Sub(at(t, ceremonyDay)).Seconds()
	if got := gauge(); len(got) != 2 || got["sign-g1"] != tenYears || got["auth-g1"] != tenYears {
		t.Errorf("on the ceremony day: %v, want sign-g1 and auth-g1 at %v", got, tenYears)
	}
	c.setDate(t, "2027-01-05")
	if _, err := c.Rotate(context.Background(), ProfileSign, time.Time{}, approval); err != nil {
		t.Fatal(err)
	}
	got := gauge()
	if len(got) != 3 || got["sign-g2"] != at(t, "2037-01-05").Sub(at(t, "2027-01-05")).Seconds() ||
		got["sign-g1"] != at(t, "2036-11-21").Sub(at(t, "2027-01-05")).Seconds() {
		t.Errorf("after the rotation: %v", got)
	}
}
