package serial

import (
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if s.Sign() <= 0 || len(s.Bytes()) != 16 || s.BitLen() != 127 {
			t.Fatalf("serial %x: sign %d, %d octets, %d bits", s, s.Sign(), len(s.Bytes()), s.BitLen())
		}
		if seen[s.String()] {
			t.Fatalf("serial %x repeated", s)
		}
		seen[s.String()] = true
	}
}

func TestOpaqueIDAndCode(t *testing.T) {
	id, err := OpaqueID("13221")
	if err != nil || len(id) != 25 || !strings.HasPrefix(id, "13221") {
		t.Fatalf("OpaqueID = %q, %v", id, err)
	}
	code, err := Code(8)
	if err != nil || len(code) != 8 || strings.ContainsAny(code, "01IO") {
		t.Fatalf("Code = %q, %v", code, err)
	}
}
