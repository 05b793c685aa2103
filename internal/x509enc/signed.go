package x509enc

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Signature splicing, done here only: a Certificate (RFC 5280 §4.1) and a CertificateList
// (§5.1) are SEQUENCE { tbs, signatureAlgorithm, signatureValue BIT STRING },
// put together around the exact bytes the HSM signed.

// Headroom is the room AppendSigned needs in front of the to-be-signed
// bytes for the outer SEQUENCE's tag and length: a length of up to 2³² - 1
// octets takes 5 octets after the tag.
const Headroom = 1 + 5

// SignedSize is the capacity AppendSigned needs after the to-be-signed
// bytes for an AlgorithmIdentifier of algLen octets and a signature of at
// most sigLen octets.
func SignedSize(algLen, sigLen int) int { return algLen + Size(1+sigLen) }

// AppendSigned makes SEQUENCE { tbs, sigAlg, BIT STRING sig } in place
// around buf[tbs:], the to-be-signed bytes, which have Headroom bytes in
// front of them: the signature goes after them and the SEQUENCE's tag and
// length into the headroom. It returns the signed DER, a slice of buf; with
// SignedSize capacity left after the to-be-signed bytes nothing is copied.
func AppendSigned(buf []byte, tbs int, sigAlg, sig []byte) []byte {
	buf = append(buf, sigAlg...)
	buf = AppendHeader(buf, cbasn1.BIT_STRING, 1+len(sig))
	buf = append(buf, 0) // no unused bits
	buf = append(buf, sig...)
	var header [Headroom]byte
	h := AppendHeader(header[:0], cbasn1.SEQUENCE, len(buf)-tbs)
	start := tbs - len(h)
	copy(buf[start:], h)
	return buf[start:]
}

// Signed returns SEQUENCE { tbs, sigAlg, BIT STRING sig } in a new buffer.
func Signed(tbs, sigAlg, sig []byte) []byte {
	buf := make([]byte, Headroom, Headroom+len(tbs)+SignedSize(len(sigAlg), len(sig)))
	buf = append(buf, tbs...)
	return AppendSigned(buf, Headroom, sigAlg, sig)
}

// SignatureAlgorithmOf returns the DER signatureAlgorithm of a signed
// structure (its second element): for a self-signed issuer certificate,
// exactly what its key signs with.
func SignatureAlgorithmOf(signed []byte) ([]byte, error) {
	in := cryptobyte.String(signed)
	var body, tbs, alg cryptobyte.String
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) || !body.ReadASN1(&tbs, cbasn1.SEQUENCE) || !body.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
		return nil, errors.New("x509enc: not a DER signed structure")
	}
	return alg, nil
}
