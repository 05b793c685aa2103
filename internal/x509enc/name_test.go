package x509enc

import (
	"crypto/x509/pkix"
	"encoding/asn1"
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
