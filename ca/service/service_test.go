package service_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// The rule tests of the CA, through its gRPC API. Each test runs a CA of its
// own (harness_test.go) whose clock starts at 10:00 JST on 2026-11-21, the
// day of its key ceremony; its issuers are valid until 2036-11-21T01:00Z.
// Unless a case says otherwise the card expires long after everything else
// (cardLater), so that the 5th birthday decides (R-V1).

const cardLater = "2040-01-01"

// keep stores what a step issued, for later steps.
func keep(dst *issued) func(*testing.T, issued) {
	return func(_ *testing.T, out issued) { *dst = out }
}

// all runs several checks.
func all(checks ...func(*testing.T, issued)) func(*testing.T, issued) {
	return func(t *testing.T, out issued) {
		t.Helper()
		for _, c := range checks {
			c(t, out)
		}
	}
}

// because checks that every issued certificate's expiry reason says why.
func because(why string) func(*testing.T, issued) {
	return func(t *testing.T, out issued) {
		t.Helper()
		for _, c := range out.certs {
			if !strings.Contains(c.ExpiryReason, why) {
				t.Errorf("%v expiry reason %q does not say %q", c.Profile, c.ExpiryReason, why)
			}
		}
	}
}

// supersedes checks a renewal of old (R-V4): the response names old's
// certificates as superseded, in order; each is now REVOKED as superseded
// by the new certificate of its profile, revoked at the renewal, and the
// new ones are VALID.
func (h *harness) supersedes(old *issued) func(*testing.T, issued) {
	return func(t *testing.T, out issued) {
		t.Helper()
		var want []string
		for _, c := range old.certs {
			want = append(want, c.Serial)
		}
		if !slices.Equal(out.superseded, want) {
			t.Errorf("superseded serials %v, want %v", out.superseded, want)
		}
		now := h.clock.Now().UTC().Format(time.RFC3339)
		for i, c := range old.certs {
			got := h.get(t, c.Serial)
			if got.Status != cav1.Status_STATUS_REVOKED || got.RevocationReason != "superseded" ||
				got.SupersededBy != out.certs[i].Serial || got.RevokedAt != now {
				t.Errorf("old %v certificate %s: status %v reason %q superseded by %q revoked at %q; want REVOKED superseded by %s at %s",
					c.Profile, c.Serial, got.Status, got.RevocationReason, got.SupersededBy, got.RevokedAt, out.certs[i].Serial, now)
			}
			if fresh := h.get(t, out.certs[i].Serial); fresh.Status != cav1.Status_STATUS_VALID {
				t.Errorf("new certificate %s is %v", fresh.Serial, fresh.Status)
			}
		}
	}
}
