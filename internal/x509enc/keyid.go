package x509enc

import (
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// tagKeyIdentifier is keyIdentifier [0] IMPLICIT KeyIdentifier of
// AuthorityKeyIdentifier (RFC 5280 §4.2.1.1).
var tagKeyIdentifier = cbasn1.Tag(0).ContextSpecific()

// PublicKeyBits returns the subjectPublicKey BIT STRING's octets of a DER
// SubjectPublicKeyInfo: what key identifiers, OCSP CertIDs and
// ResponderIDs hash.
func PublicKeyBits(spki []byte) ([]byte, error) {
	in := cryptobyte.String(spki)
	var body cryptobyte.String
	var bits asn1.BitString
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) || !in.Empty() ||
		!body.SkipASN1(cbasn1.SEQUENCE) || !body.ReadASN1BitString(&bits) || !body.Empty() {
		return nil, errors.New("malformed subjectPublicKeyInfo")
	}
	if bits.BitLength%8 != 0 {
		return nil, errors.New("subjectPublicKey is not a whole number of octets")
	}
	return bits.Bytes, nil
}

// SubjectKeyID is RFC 5280 §4.2.1.2 method (1), Shomei's one key
// identifier of a public key (issuers, holders, OCSP responders): the
// SHA-1 of the subjectPublicKey BIT STRING of a DER SubjectPublicKeyInfo.
func SubjectKeyID(spki []byte) ([]byte, error) {
	bits, err := PublicKeyBits(spki)
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(bits)
	return sum[:], nil
}

// SubjectKeyIDOf is SubjectKeyID of pub's SubjectPublicKeyInfo.
func SubjectKeyIDOf(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return SubjectKeyID(spki)
}

// MarshalSubjectKeyID is the subjectKeyIdentifier extension's value:
// SubjectKeyIdentifier ::= OCTET STRING.
func MarshalSubjectKeyID(ski []byte) []byte {
	return append(AppendHeader(make([]byte, 0, Size(len(ski))), cbasn1.OCTET_STRING, len(ski)), ski...)
}

// MarshalAuthorityKeyID is the authorityKeyIdentifier extension's value
// as crypto/x509 writes it: AuthorityKeyIdentifier ::= SEQUENCE {
// keyIdentifier [0] } with no issuer name or serial.
func MarshalAuthorityKeyID(keyID []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(tagKeyIdentifier, func(b *cryptobyte.Builder) { b.AddBytes(keyID) })
	})
	return b.Bytes()
}

// ParseAuthorityKeyID reads an authorityKeyIdentifier value: its
// keyIdentifier, and whether that is all it holds (no authorityCertIssuer
// or authorityCertSerialNumber). ok is false when it has no keyIdentifier.
func ParseAuthorityKeyID(value []byte) (keyID []byte, only, ok bool) {
	in := cryptobyte.String(value)
	var seq, kid cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() || !seq.ReadASN1(&kid, tagKeyIdentifier) {
		return nil, false, false
	}
	return kid, seq.Empty(), true
}
