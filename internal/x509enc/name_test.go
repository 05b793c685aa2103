package x509enc

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	mrand "math/rand/v2"
	"strings"
	"testing"
)

func TestParseAndEncode(t *testing.T) {
	parts := []string{"C=JP", "O=JPKI", "OU=JPKI for digital signature", "OU=Japan Agency for Local Authority Information Systems"}
	d, err := ParseDN(parts)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.String(), strings.Join(parts, ", "); got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	der, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var seq pkix.RDNSequence
	if _, err := asn1.Unmarshal(der, &seq); err != nil {
		t.Fatal(err)
	}
	// Four RDNs of one attribute each, in the written order: the two OUs
	// must not collapse into one multi-valued RDN.
	if len(seq) != 4 {
		t.Fatalf("%d RDNs, want 4", len(seq))
	}
	for i, rdn := range seq {
		if len(rdn) != 1 {
			t.Fatalf("RDN %d has %d attributes, want 1", i, len(rdn))
		}
	}
	if !seq[2][0].Type.Equal(AttributeOID("OU")) || seq[2][0].Value != "JPKI for digital signature" {
		t.Fatalf("third RDN = %v", seq[2][0])
	}
	back, err := DNFromDER(der)
	if err != nil || back.String() != d.String() {
		t.Fatalf("FromDER = %v, %v", back, err)
	}
}

func TestUTF8Values(t *testing.T) {
	d := DN{{"C", "JP"}, {"O", "公的個人認証サービス"}}
	der, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// 0x0c is the UTF8String tag; 0x13 PrintableString.
	if !strings.Contains(string(der), "\x0c\x1e公的個人認証サービス") || !strings.Contains(string(der), "\x13\x02JP") {
		t.Fatalf("unexpected string encodings: % x", der)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		parts []string
		want  string
	}{
		{nil, "empty name"},
		{[]string{"C=JP", "OJPKI"}, `part 2 "OJPKI" is not TYPE=value`},
		{[]string{"C=JP", "X=1"}, `attribute type "X"`},
		{[]string{"C=Japan"}, "two-letter"},
		{[]string{"CN=" + strings.Repeat("a", 65)}, "65 characters"},
		{[]string{"O="}, "not TYPE=value"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			_, err := ParseDN(tc.parts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseDN(%q) = %v, want error containing %q", tc.parts, err, tc.want)
			}
		})
	}
}

// TestMarshalIsRDNSequenceMarshal: Marshal writes what encoding/asn1
// writes for the name's RDNSequence, string types included, and refuses
// what Validate refuses.
func TestMarshalIsRDNSequenceMarshal(t *testing.T) {
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
		d := DN{{Type: "C", Value: "JP"}, {Type: types[1+i%5], Value: v}, {Type: types[1+(i/5)%5], Value: v + "x"}}
		got, err := d.Marshal()
		want, wantErr := asn1.Marshal(d.RDNSequence())
		if wantErr == nil {
			wantErr = d.Validate()
		}
		if (err != nil) != (wantErr != nil) || err == nil && !bytes.Equal(got, want) {
			t.Fatalf("%q: Marshal %x, %v; encoding/asn1 %x, %v", v, got, err, want, wantErr)
		}
		if err == nil {
			back, err := DNFromDER(got)
			if err != nil || back.String() != d.String() {
				t.Fatalf("%q: DNFromDER = %v, %v", v, back, err)
			}
		}
	}
	for _, bad := range []DN{nil, {{Type: "X", Value: "y"}}, {{Type: "C", Value: "jp"}}, {{Type: "CN", Value: ""}}, {{Type: "CN", Value: "\xff"}}} {
		if _, err := bad.Marshal(); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// TestAttributeTable: the one attribute table maps both ways, and names
// what pkix knows by the same OIDs.
func TestAttributeTable(t *testing.T) {
	var n pkix.Name
	n.FillFromRDNSequence(&pkix.RDNSequence{
		{{Type: AttributeOID("C"), Value: "JP"}}, {{Type: AttributeOID("ST"), Value: "st"}}, {{Type: AttributeOID("L"), Value: "l"}},
		{{Type: AttributeOID("O"), Value: "o"}}, {{Type: AttributeOID("OU"), Value: "ou"}}, {{Type: AttributeOID("CN"), Value: "cn"}},
	})
	if n.String() != "CN=cn,OU=ou,O=o,L=l,ST=st,C=JP" {
		t.Errorf("pkix reads the table's OIDs as %s", n)
	}
	for _, a := range attributeTypes {
		if AttributeName(AttributeOID(a.name)) != a.name {
			t.Errorf("%s does not map back", a.name)
		}
		der, err := asn1.Marshal(a.oid)
		if err != nil || !bytes.Equal(der[2:], a.der) {
			t.Errorf("%s: contents octets %x, encoding/asn1 %x", a.name, a.der, der)
		}
	}
	if AttributeName(asn1.ObjectIdentifier{2, 5, 4, 5}) != "" || AttributeOID("SERIALNUMBER") != nil {
		t.Error("an attribute outside the table is known")
	}
}
