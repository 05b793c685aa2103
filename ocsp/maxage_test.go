package ocsp_test

import (
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ocsp"
)

// TestGoodMaxAge: Config.GoodMaxAge sets the Cache-Control max-age of good
// answers only; revoked answers keep MaxAge (or the time to nextUpdate),
// unknown and nonce answers stay no-cache; unset, good answers are as
// before. A bad value is refused with the reason.
func TestGoodMaxAge(t *testing.T) {
	const cc = ", public, no-transform, must-revalidate"
	dur := func(d time.Duration) *time.Duration { return &d }
	nonce := []byte("0123456789abcdef")
	for _, c := range []struct {
		name                   string
		maxAge                 time.Duration
		goodMaxAge             *time.Duration
		good, revoked, unknown string
	}{
		{"unset", 0, nil, "max-age=3600" + cc, "max-age=3600" + cc, "no-cache"},
		{"unset, with max_age", 5 * time.Minute, nil, "max-age=300" + cc, "max-age=300" + cc, "no-cache"},
		{"60 s", 0, dur(time.Minute), "max-age=60" + cc, "max-age=3600" + cc, "no-cache"},
		{"60 s, with max_age", 5 * time.Minute, dur(time.Minute), "max-age=60" + cc, "max-age=300" + cc, "no-cache"},
		{"longer than max_age", 5 * time.Minute, dur(30 * time.Minute), "max-age=1800" + cc, "max-age=300" + cc, "no-cache"},
		{"zero", 5 * time.Minute, dur(0), "max-age=0" + cc, "max-age=300" + cc, "no-cache"},
		{"the validity", 0, dur(time.Hour), "max-age=3600" + cc, "max-age=3600" + cc, "no-cache"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *ocsp.Config) { cfg.MaxAge, cfg.GoodMaxAge = c.maxAge, c.goodMaxAge })
			g := e.f.gen1
			for _, q := range []struct {
				what, method string
				der          []byte
				want         string
			}{
				{"good", "GET", request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood)), c.good},
				{"good, POST", "POST", request(t, g.cert, crypto.SHA256, nil, g.leaf(serialGood)), c.good},
				{"revoked", "GET", request(t, g.cert, crypto.SHA1, nil, g.leaf(serialRevoked)), c.revoked},
				{"good and revoked", "POST", request(t, g.cert, crypto.SHA1, nil, g.leaf(serialGood), g.leaf(serialRevoked)), c.revoked},
				{"unknown", "GET", request(t, g.cert, crypto.SHA1, nil, g.leaf(serialUnknown)), c.unknown},
				{"good with a nonce", "POST", request(t, g.cert, crypto.SHA1, nonce, g.leaf(serialGood)), "no-cache"},
			} {
				if got := serve(t, e.r, q.method, q.der, nil).Header().Get("Cache-Control"); got != q.want {
					t.Errorf("%s: Cache-Control %q, want %q", q.what, got, q.want)
				}
			}
		})
	}
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "-1s is negative"},
		{1500 * time.Millisecond, "1.5s is not whole seconds"},
		{time.Hour + time.Second, "1h0m1s is longer than the response validity 1h0m0s"},
	} {
		if _, err := ocsp.New(ocsp.Config{Issuers: []*ocsp.Issuer{{}}, Source: newFakeSource(), GoodMaxAge: &c.d}); err == nil || !strings.Contains(err.Error(), "Config.GoodMaxAge: "+c.want) {
			t.Errorf("GoodMaxAge %v: %v, want %q", c.d, err, c.want)
		}
	}
}
