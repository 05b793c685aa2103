package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestGoodMaxAge: ocsp.good_max_age is unset by default (good answers
// take max_age, as before), decodes for the CA and the replica alike, and
// is refused negative, in fractions of a second or longer than the
// response validity, naming the key.
func TestGoodMaxAge(t *testing.T) {
	c, err := Decode(strings.NewReader(valid), "/etc/shomei")
	if err != nil {
		t.Fatal(err)
	}
	if c.OCSP.GoodMaxAge != nil {
		t.Errorf("good_max_age defaults to %v, want unset", *c.OCSP.GoodMaxAge)
	}
	for extra, want := range map[string]time.Duration{
		"ocsp:\n  good_max_age: 0s\n":                          0,
		"ocsp:\n  good_max_age: 60s\n":                         time.Minute,
		"ocsp:\n  good_max_age: 1h\n":                          time.Hour, // the default validity
		"ocsp:\n  response_validity: 4h\n  good_max_age: 4h\n": 4 * time.Hour,
	} {
		c, err := Decode(strings.NewReader(valid+extra), "/etc/shomei")
		if err != nil {
			t.Errorf("%q: %v", extra, err)
			continue
		}
		if g := c.OCSP.GoodMaxAge; g == nil || *g != want {
			t.Errorf("%q decoded as %v, want %v", extra, g, want)
		}
	}
	refused(t, map[string]struct{ extra, want string }{
		"negative":          {"ocsp:\n  good_max_age: -1s\n", "ocsp.good_max_age: -1s is negative"},
		"fraction":          {"ocsp:\n  good_max_age: 1500ms\n", "ocsp.good_max_age: 1.5s is not whole seconds"},
		"past the validity": {"ocsp:\n  good_max_age: 61m\n", "ocsp.good_max_age: 1h1m0s is longer than the response validity 1h0m0s"},
		"past a set one":    {"ocsp:\n  response_validity: 10m\n  good_max_age: 11m\n", "longer than the response validity 10m0s"},
		"not a duration":    {"ocsp:\n  good_max_age: soon\n", "cannot unmarshal !!str `soon` into time.Duration"},
	})

	// The replica shares the ocsp: section.
	raw, err := os.ReadFile("../../deploy/shomei-ocsp.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "ocsp:\n", "ocsp:\n  good_max_age: 30s\n", 1)
	if text == string(raw) {
		t.Fatal("the example replica configuration has no ocsp: section")
	}
	for value, want := range map[string]string{"30s": "", "2h": "ocsp.good_max_age: 2h0m0s is longer than the response validity 1h0m0s"} {
		r, err := DecodeReplica(strings.NewReader(strings.Replace(text, "good_max_age: 30s", "good_max_age: "+value, 1)), "../../deploy")
		switch {
		case want == "" && err != nil:
			t.Errorf("replica good_max_age %s: %v", value, err)
		case want == "" && (r.OCSP.GoodMaxAge == nil || *r.OCSP.GoodMaxAge != 30*time.Second):
			t.Errorf("replica good_max_age %s decoded as %v", value, r.OCSP.GoodMaxAge)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("replica good_max_age %s: %v, want an error containing %q", value, err, want)
		}
	}
}
