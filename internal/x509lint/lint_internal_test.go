package x509lint

import (
	"testing"

	"github.com/zmap/zlint/v3/lint"
)

// TestRFC5280Lints: Lint runs the 115 RFC 5280 certificate lints of zlint
// v3.7.1 that doc.go promises. A missing registration (zlint registers its
// lints from its own package's imports) would leave none.
func TestRFC5280Lints(t *testing.T) {
	set, err := rfc5280Lints()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(set.lints); n != 115 {
		t.Errorf("%d RFC 5280 certificate lints; doc.go says 115 (update it with zlint)", n)
	}
	for _, l := range set.lints {
		if l.Source != lint.RFC5280 {
			t.Errorf("%s: source %s", l.Name, l.Source)
		}
	}
}
