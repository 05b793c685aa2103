package profile

import (
	"bytes"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/shomei-pki/shomei/ca/dn"
)

// TestMarshalNameIsDNMarshal: marshalName writes what ca/dn's
// encoding/asn1-based Marshal writes, string types included, and refuses
// what it refuses.
func TestMarshalNameIsDNMarshal(t *testing.T) {
	values := []string{
		"JP", "JPKI", "JPKI for digital signature", "CRL Distribution Points", "Kiyose-shi CRLDP",
		"東京都", "清瀬市 CRLDP", "公的個人認証サービス", "a*b", "a&b", "x_y", "tab\there", "!", "#", "@", "~",
		" '()+,-./:=?", "Tokyo-to", "é", strings.Repeat("あ", 64), strings.Repeat("A", 64),
		strings.Repeat("𠮷", 63), strings.Repeat("𠮷", 64), strings.Repeat("𠮷", 65), strings.Repeat("A", 127), strings.Repeat("A", 128),
	}
	alphabet := []rune("AZaz09 '()+,-./:=?*&_!\"#$%;<>@[]^`{|}~\u00e9あ漢\u3000")
	rng := mrand.New(mrand.NewPCG(1, 2))
	for range 2000 {
		var b strings.Builder
		for range 1 + rng.IntN(20) {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		values = append(values, b.String())
	}
	types := []string{"C", "ST", "L", "O", "OU", "CN"}
	for i, v := range values {
		d := dn.DN{{Type: "C", Value: "JP"}, {Type: types[1+i%5], Value: v}, {Type: types[1+(i/5)%5], Value: v + "x"}}
		want, wantErr := d.Marshal()
		got, err := marshalName(d)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("%q: marshalName %x, %v; dn.Marshal %x, %v", v, got, err, want, wantErr)
		}
	}
	for _, bad := range []dn.DN{nil, {{Type: "X", Value: "y"}}, {{Type: "C", Value: "jp"}}, {{Type: "CN", Value: ""}}, {{Type: "CN", Value: "\xff"}}} {
		if _, err := marshalName(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
