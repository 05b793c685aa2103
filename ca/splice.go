package ca

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// DER helpers of the issuance cycle: the signed certificate is assembled
// around the exact TBS the HSM signed.

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
