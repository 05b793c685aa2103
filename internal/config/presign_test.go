package config

import (
	"strings"
	"testing"
	"time"
)

// TestPresign: the pre-signer's settings default to on and are bounded,
// refresh_after against the response validity, each refusal naming the key.
func TestPresign(t *testing.T) {
	c, err := Decode(strings.NewReader(valid), "/etc/shomei")
	if err != nil {
		t.Fatal(err)
	}
	if !c.OCSP.Presign.On() {
		t.Error("pre-signing is off by default")
	}
	c, err = Decode(strings.NewReader(valid+"ocsp:\n  response_validity: 4h\n  presign:\n    enabled: false\n    budget: 500\n    burst: 50\n    refresh_after: 1h59m\n    workers: 8\n"), "/etc/shomei")
	if err != nil {
		t.Fatal(err)
	}
	if p := c.OCSP.Presign; p.On() || p.Budget != 500 || p.Burst != 50 || p.RefreshAfter != 119*time.Minute || p.Workers != 8 {
		t.Errorf("decoded %+v", p)
	}
	refused(t, map[string]struct{ extra, want string }{
		"negative budget":        {"ocsp:\n  presign:\n    budget: -1\n", "ocsp.presign.budget -1"},
		"huge budget":            {"ocsp:\n  presign:\n    budget: 1e9\n", "ocsp.presign.budget 1e+09"},
		"huge burst":             {"ocsp:\n  presign:\n    burst: 1000000\n", "ocsp.presign.burst 1000000"},
		"refresh at half":        {"ocsp:\n  presign:\n    refresh_after: 30m\n", "ocsp.presign.refresh_after 30m0s"},
		"refresh past half":      {"ocsp:\n  response_validity: 10m\n  presign:\n    refresh_after: 6m\n", "less than half the response validity 10m0s"},
		"negative refresh":       {"ocsp:\n  presign:\n    refresh_after: -1s\n", "ocsp.presign.refresh_after -1s"},
		"too many workers":       {"ocsp:\n  presign:\n    workers: 65\n", "ocsp.presign.workers 65"},
		"an unknown presign key": {"ocsp:\n  presign:\n    rate: 5\n", "field rate not found"},
	})
}
