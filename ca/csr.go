package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
)

// holderKey is a card key from a verified certificate request.
type holderKey struct {
	pub        crypto.PublicKey
	spkiSHA256 []byte
}

// parseCSR checks a card's PKCS#10 request: it parses, its signature
// verifies (proof of possession), and its key is RSA of at least 2048 bits
// with e = 65537, or ECDSA P-256 when allowed (R-P1). Anything the request
// asks for beyond its key (subject, extensions) is ignored: the profile
// decides the certificate's content.
func parseCSR(vs *violations, field string, der []byte, allowP256 bool) holderKey {
	if len(der) == 0 {
		vs.add(field, "R-P1", "the card's PKCS#10 request is required")
		return holderKey{}
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		vs.add(field, "R-P1", "is not a DER PKCS#10 request: %v", err)
		return holderKey{}
	}
	if err := csr.CheckSignature(); err != nil {
		vs.add(field, "R-P1", "its signature does not verify, so it proves no possession of the key: %v", err)
		return holderKey{}
	}
	switch k := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 || k.E != 65537 {
			vs.add(field, "R-P1", "RSA key of %d bits with exponent %d: need at least 2048 bits and exponent 65537", k.N.BitLen(), k.E)
			return holderKey{}
		}
	case *ecdsa.PublicKey:
		if !allowP256 || k.Curve != elliptic.P256() {
			vs.add(field, "R-P1", "ECDSA %s keys are not accepted (RSA of at least 2048 bits%s)", k.Curve.Params().Name, map[bool]string{true: ", or ECDSA P-256"}[allowP256])
			return holderKey{}
		}
	default:
		vs.add(field, "R-P1", "%T keys are not accepted: RSA of at least 2048 bits", csr.PublicKey)
		return holderKey{}
	}
	sum := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	return holderKey{pub: csr.PublicKey, spkiSHA256: sum[:]}
}
