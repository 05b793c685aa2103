package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
)

// holderKey is a card key from a verified certificate request.
type holderKey struct {
	pub        crypto.PublicKey
	spkiSHA256 []byte
}

// parseCSR checks a card's PKCS#10 request: it is at most MaxCSRBytes, it
// parses, its key is RSA of MinRSABits to MaxRSABits with e = 65537, or
// ECDSA P-256 when allowed, and its signature verifies (proof of
// possession) (R-P1). The key is checked before the signature, the one
// step whose cost grows with the key. Anything the request asks for beyond
// its key (subject, extensions) is ignored: the profile decides the
// certificate's content.
func parseCSR(vs *violations, field string, der []byte, allowP256 bool) holderKey {
	if len(der) == 0 {
		vs.add(field, "R-P1", "the card's PKCS#10 request is required")
		return holderKey{}
	}
	if len(der) > MaxCSRBytes {
		vs.add(field, "R-P1", "%d bytes: a card's request is at most %d bytes", len(der), MaxCSRBytes)
		return holderKey{}
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		vs.add(field, "R-P1", "is not a DER PKCS#10 request: %v", err)
		return holderKey{}
	}
	accepted := fmt.Sprintf("RSA of %d to %d bits", MinRSABits, MaxRSABits)
	if allowP256 {
		accepted += ", or ECDSA P-256"
	}
	switch k := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits || n > MaxRSABits || k.E != 65537 {
			vs.add(field, "R-P1", "RSA key of %d bits with exponent %d: need %d to %d bits and exponent 65537", n, k.E, MinRSABits, MaxRSABits)
			return holderKey{}
		}
	case *ecdsa.PublicKey:
		if !allowP256 || k.Curve != elliptic.P256() {
			vs.add(field, "R-P1", "ECDSA %s keys are not accepted (%s)", k.Curve.Params().Name, accepted)
			return holderKey{}
		}
	default:
		vs.add(field, "R-P1", "%T keys are not accepted: %s", csr.PublicKey, accepted)
		return holderKey{}
	}
	if err := csr.CheckSignature(); err != nil {
		vs.add(field, "R-P1", "its signature does not verify, so it proves no possession of the key: %v", err)
		return holderKey{}
	}
	sum := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	return holderKey{pub: csr.PublicKey, spkiSHA256: sum[:]}
}
