package x509enc

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"unicode/utf8"

	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Distinguished names, built attribute by attribute in the order they are
// written.
//
// JPKI names repeat attribute types (two OUs in every issuer DN, two Ls in
// the signature certificate's subject), and each value must be a relative
// distinguished name of its own. crypto/x509/pkix.Name puts repeated values
// of a type into one multi-valued RDN and reorders types, so Shomei encodes
// names as DN values and hands crypto/x509 the raw DER.
//
// The text form used in configuration is "TYPE=value" per RDN, most general
// first, exactly as the name is encoded and as `openssl x509 -text` prints
// it (C=JP, O=JPKI, OU=…): the opposite order of RFC 4514 strings.

// attributeType is one attribute type a DN may hold (RFC 4519).
type attributeType struct {
	name string
	oid  asn1.ObjectIdentifier
	der  []byte // the OID's contents octets
}

// attributeTypes is the one attribute-type table of Shomei's names
// (issue 10): the encoder, the parser and the checkers' messages read it.
var attributeTypes = []attributeType{
	{"C", asn1.ObjectIdentifier{2, 5, 4, 6}, []byte{0x55, 0x04, 0x06}},
	{"ST", asn1.ObjectIdentifier{2, 5, 4, 8}, []byte{0x55, 0x04, 0x08}},
	{"L", asn1.ObjectIdentifier{2, 5, 4, 7}, []byte{0x55, 0x04, 0x07}},
	{"O", asn1.ObjectIdentifier{2, 5, 4, 10}, []byte{0x55, 0x04, 0x0a}},
	{"OU", asn1.ObjectIdentifier{2, 5, 4, 11}, []byte{0x55, 0x04, 0x0b}},
	{"CN", asn1.ObjectIdentifier{2, 5, 4, 3}, []byte{0x55, 0x04, 0x03}},
}

// attributeTypeOf returns the table's entry of a type name, or nil.
func attributeTypeOf(name string) *attributeType {
	for i := range attributeTypes {
		if attributeTypes[i].name == name {
			return &attributeTypes[i]
		}
	}
	return nil
}

// AttributeOID returns the OID of an attribute type name (C, ST, L, O, OU
// or CN), or nil.
func AttributeOID(name string) asn1.ObjectIdentifier {
	if t := attributeTypeOf(name); t != nil {
		return t.oid
	}
	return nil
}

// AttributeName returns the name of an attribute type OID (C, ST, L, O, OU
// or CN), or "" for another.
func AttributeName(oid asn1.ObjectIdentifier) string {
	for _, t := range attributeTypes {
		if t.oid.Equal(oid) {
			return t.name
		}
	}
	return ""
}

// Attr is one RDN holding one attribute.
type Attr struct {
	Type  string // C, ST, L, O, OU or CN
	Value string
}

// DN is a distinguished name, most general RDN first.
type DN []Attr

// ParseDN reads a DN from "TYPE=value" parts, most general first.
func ParseDN(parts []string) (DN, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("dn: empty name")
	}
	d := make(DN, 0, len(parts))
	for i, p := range parts {
		typ, val, ok := strings.Cut(p, "=")
		typ = strings.TrimSpace(typ)
		if !ok || strings.TrimSpace(val) == "" {
			return nil, fmt.Errorf("dn: part %d %q is not TYPE=value", i+1, p)
		}
		d = append(d, Attr{Type: typ, Value: strings.TrimSpace(val)})
	}
	return d, d.Validate()
}

// Validate checks the attribute types and values.
func (d DN) Validate() error {
	if len(d) == 0 {
		return fmt.Errorf("dn: empty name")
	}
	for i, a := range d {
		if attributeTypeOf(a.Type) == nil {
			return fmt.Errorf("dn: part %d: attribute type %q is not one of C, ST, L, O, OU, CN", i+1, a.Type)
		}
		if a.Value == "" || !utf8.ValidString(a.Value) {
			return fmt.Errorf("dn: part %d (%s): empty or invalid UTF-8 value", i+1, a.Type)
		}
		if a.Type == "C" && (len(a.Value) != 2 || strings.ToUpper(a.Value) != a.Value) {
			return fmt.Errorf("dn: part %d: country %q is not a two-letter ISO 3166 code", i+1, a.Value)
		}
		if n := utf8.RuneCountInString(a.Value); n > 64 {
			return fmt.Errorf("dn: part %d (%s): %d characters, RFC 5280 allows 64", i+1, a.Type, n)
		}
	}
	return nil
}

// With returns a copy of d with more RDNs appended.
func (d DN) With(more ...Attr) DN {
	return append(append(DN{}, d...), more...)
}

// RDNSequence returns the name as pkix values, one attribute per RDN.
func (d DN) RDNSequence() pkix.RDNSequence {
	seq := make(pkix.RDNSequence, 0, len(d))
	for _, a := range d {
		seq = append(seq, []pkix.AttributeTypeAndValue{{Type: AttributeOID(a.Type), Value: a.Value}})
	}
	return seq
}

// Marshal returns the DER of the name, one attribute per RDN: byte for
// byte what encoding/asn1 writes for d.RDNSequence(), without its
// reflection (which cost most of a certificate's encoding time). A value
// is a PrintableString when every byte is in its character set and a
// UTF8String otherwise (Japanese text), as RFC 5280 §4.1.2.4 asks of new
// certificates.
func (d DN) Marshal() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	// RDNSequence ::= SEQUENCE OF SET { SEQUENCE { OID, string } }, each
	// length known before its element is written.
	size := 0
	for _, a := range d {
		size += Size(Size(Size(len(attributeTypeOf(a.Type).der)) + Size(len(a.Value))))
	}
	out := make([]byte, 0, Size(size))
	out = AppendHeader(out, cbasn1.SEQUENCE, size)
	for _, a := range d {
		oid := attributeTypeOf(a.Type).der
		tag := cbasn1.PrintableString
		if !printableString(a.Value) {
			tag = cbasn1.UTF8String
		}
		atv := Size(len(oid)) + Size(len(a.Value))
		out = AppendHeader(out, cbasn1.SET, Size(atv))
		out = AppendHeader(out, cbasn1.SEQUENCE, atv)
		out = AppendHeader(out, cbasn1.OBJECT_IDENTIFIER, len(oid))
		out = append(out, oid...)
		out = AppendHeader(out, tag, len(a.Value))
		out = append(out, a.Value...)
	}
	return out, nil
}

// printableString reports whether encoding/asn1 would marshal s as a
// PrintableString: only A-Z a-z 0-9 space ' ( ) + , - . / : = ? (no '*'
// or '&', which it accepts only when parsing).
func printableString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == ' ', '\'' <= c && c <= ')', '+' <= c && c <= '/', c == ':', c == '=', c == '?':
		default:
			return false
		}
	}
	return true
}

// String renders the name as configured: "C=JP, O=JPKI, OU=…".
func (d DN) String() string {
	parts := make([]string, len(d))
	for i, a := range d {
		parts[i] = a.Type + "=" + a.Value
	}
	return strings.Join(parts, ", ")
}

// DNFromDER decodes a name encoded with one attribute per RDN.
func DNFromDER(der []byte) (DN, error) {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("dn: not a DER name")
	}
	var d DN
	for _, rdn := range seq {
		for _, atv := range rdn {
			name := AttributeName(atv.Type)
			v, ok := atv.Value.(string)
			if name == "" || !ok {
				return nil, fmt.Errorf("dn: attribute %v is not supported", atv.Type)
			}
			d = append(d, Attr{Type: name, Value: v})
		}
	}
	return d, nil
}
