package ca

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The lint pass signs with a throwaway ECDSA P-256 key (see doc.go). These
// helpers turn the linted TBSCertificate into the one the HSM signs, by
// replacing its signature AlgorithmIdentifier with the issuer's, and then
// assemble the signed certificate. Both are exact DER surgery: every other
// byte of the TBS stays as linted.

// spliceSigAlg returns tbs with its signature field (the third element of
// TBSCertificate, RFC 5280 §4.1) replaced by sigAlg, a DER AlgorithmIdentifier.
func spliceSigAlg(tbs, sigAlg []byte) ([]byte, error) {
	in := cryptobyte.String(tbs)
	var body cryptobyte.String
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("ca: TBSCertificate is not a DER SEQUENCE")
	}
	var version, serial, oldAlg cryptobyte.String
	if !body.ReadASN1Element(&version, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!body.ReadASN1Element(&serial, cbasn1.INTEGER) ||
		!body.ReadASN1Element(&oldAlg, cbasn1.SEQUENCE) {
		return nil, errors.New("ca: TBSCertificate does not start with version, serial and signature")
	}
	check := cryptobyte.String(sigAlg)
	var alg cryptobyte.String
	if !check.ReadASN1Element(&alg, cbasn1.SEQUENCE) || !check.Empty() {
		return nil, errors.New("ca: issuer signature AlgorithmIdentifier is not a DER SEQUENCE")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(version)
		b.AddBytes(serial)
		b.AddBytes(sigAlg)
		b.AddBytes(body) // issuer, validity, subject, key, extensions: as linted
	})
	return b.Bytes()
}

// assemble builds Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signature BIT STRING }.
func assemble(tbs, sigAlg, signature []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddBytes(sigAlg)
		b.AddASN1BitString(signature)
	})
	return b.Bytes()
}

// signatureAlgorithmOf returns the DER signatureAlgorithm of a certificate
// (the second element of Certificate): for a self-signed issuer
// certificate, exactly what its key signs with.
func signatureAlgorithmOf(certDER []byte) ([]byte, error) {
	in := cryptobyte.String(certDER)
	var body, tbs, alg cryptobyte.String
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) || !body.ReadASN1(&tbs, cbasn1.SEQUENCE) || !body.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
		return nil, errors.New("ca: issuer certificate is not DER")
	}
	return alg, nil
}
