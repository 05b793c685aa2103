package issuer_test

import (
	"bytes"
	"testing"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
)

// TestPublished: every generation's certificate under its key label, each
// later generation followed by its NewWithOld and OldWithNew links, named
// as /issuers/ serves them (R-K1).
func TestPublished(t *testing.T) {
	gen := func(p storev1.Profile, g uint32, state storev1.KeyState, cert, newWithOld, oldWithNew string) issuer.Issuer {
		return issuer.Issuer{IssuerKey: &storev1.IssuerKey{Profile: p, Generation: g, KeyLabel: issuer.KeyLabel(p, g), State: state,
			CertificateDer: []byte(cert), LinkNewWithOldDer: []byte(newWithOld), LinkOldWithNewDer: []byte(oldWithNew)}}
	}
	sign, auth := storev1.Profile_PROFILE_SIGN, storev1.Profile_PROFILE_AUTH
	got := issuer.Published([]issuer.Issuer{
		gen(sign, 1, storev1.KeyState_KEY_STATE_RETIRED, "s1", "", ""),
		gen(sign, 2, storev1.KeyState_KEY_STATE_SUPERSEDED, "s2", "s2-by-1", "s1-by-2"),
		gen(sign, 3, storev1.KeyState_KEY_STATE_PENDING, "s3", "s3-by-2", "s2-by-3"),
		gen(auth, 1, storev1.KeyState_KEY_STATE_ACTIVE, "a1", "", ""),
	})
	want := []struct {
		name, der string
		link      bool
	}{
		{"shomei-sign-g1", "s1", false},
		{"shomei-sign-g2", "s2", false},
		{"shomei-sign-g2-by-g1", "s2-by-1", true},
		{"shomei-sign-g1-by-g2", "s1-by-2", true},
		{"shomei-sign-g3", "s3", false},
		{"shomei-sign-g3-by-g2", "s3-by-2", true},
		{"shomei-sign-g2-by-g3", "s2-by-3", true},
		{"shomei-auth-g1", "a1", false},
	}
	if len(got) != len(want) {
		t.Fatalf("%d certificates, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Name != w.name || !bytes.Equal(got[i].DER, []byte(w.der)) || got[i].Link != w.link {
			t.Errorf("[%d] = %s %q link=%v, want %s %q link=%v", i, got[i].Name, got[i].DER, got[i].Link, w.name, w.der, w.link)
		}
	}
}
