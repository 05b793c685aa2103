package x509enc

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// TestHeader: AppendHeader and Size agree with cryptobyte on every length
// form.
func TestHeader(t *testing.T) {
	for _, n := range []int{0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffff, 0x1000000} {
		content := make([]byte, n)
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) { b.AddBytes(content) })
		want := b.BytesOrPanic()
		got := append(AppendHeader(nil, cbasn1.OCTET_STRING, n), content...)
		if !bytes.Equal(got[:8], want[:8]) || len(got) != len(want) || Size(n) != len(want) {
			t.Errorf("n=%d: header % x, Size %d; cryptobyte % x, %d", n, got[:6], Size(n), want[:6], len(want))
		}
	}
}
