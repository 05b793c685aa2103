package dn

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Attribute type OIDs, RFC 4519.
var (
	oidC  = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidST = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidL  = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidO  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
)

var types = map[string]asn1.ObjectIdentifier{"C": oidC, "ST": oidST, "L": oidL, "O": oidO, "OU": oidOU, "CN": oidCN}

// Attr is one RDN holding one attribute.
type Attr struct {
	Type  string // C, ST, L, O, OU or CN
	Value string
}

// DN is a distinguished name, most general RDN first.
type DN []Attr

// Parse reads a DN from "TYPE=value" parts, most general first.
func Parse(parts []string) (DN, error) {
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
		if _, ok := types[a.Type]; !ok {
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
		seq = append(seq, []pkix.AttributeTypeAndValue{{Type: types[a.Type], Value: a.Value}})
	}
	return seq
}

// Marshal returns the DER of the name. Values that are PrintableString-safe
// are encoded as PrintableString, others (Japanese text) as UTF8String, which
// is what RFC 5280 §4.1.2.4 asks of new certificates.
func (d DN) Marshal() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return asn1.Marshal(d.RDNSequence())
}

// String renders the name as configured: "C=JP, O=JPKI, OU=…".
func (d DN) String() string {
	parts := make([]string, len(d))
	for i, a := range d {
		parts[i] = a.Type + "=" + a.Value
	}
	return strings.Join(parts, ", ")
}

// FromDER decodes a name encoded with one attribute per RDN.
func FromDER(der []byte) (DN, error) {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("dn: not a DER name")
	}
	var d DN
	for _, rdn := range seq {
		for _, atv := range rdn {
			name := ""
			for n, oid := range types {
				if oid.Equal(atv.Type) {
					name = n
				}
			}
			v, ok := atv.Value.(string)
			if name == "" || !ok {
				return nil, fmt.Errorf("dn: attribute %v is not supported", atv.Type)
			}
			d = append(d, Attr{Type: name, Value: v})
		}
	}
	return d, nil
}
