package crl

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	_ "crypto/sha256" // crypto.SHA256.New
	_ "crypto/sha512" // crypto.SHA384.New, crypto.SHA512.New
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// signatureAlgorithm is how Build signs with one x509.SignatureAlgorithm.
// RSA is PKCS #1 v1.5 (the opts are the crypto.Hash): the issuer profile
// (ca/profile.SignatureAlgorithm, R-P1) never chooses RSA-PSS, so there is
// no PSS here. ECDSA signatures are ASN.1 DER, as crypto.Signer returns
// them.
type signatureAlgorithm struct {
	hash crypto.Hash
	id   []byte // the DER AlgorithmIdentifier
	rsa  bool
}

// signatureAlgorithms are the algorithms Build signs with, and the others
// Check names when it finds them. The AlgorithmIdentifiers are
// x509.CreateRevocationList's: a NULL parameter for RSA, none for ECDSA
// (RFC 4055 §5, RFC 5758 §3.2).
var signatureAlgorithms = map[x509.SignatureAlgorithm]signatureAlgorithm{
	x509.SHA256WithRSA:   {crypto.SHA256, algorithmIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, true), true},
	x509.SHA384WithRSA:   {crypto.SHA384, algorithmIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}, true), true},
	x509.SHA512WithRSA:   {crypto.SHA512, algorithmIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}, true), true},
	x509.ECDSAWithSHA256: {crypto.SHA256, algorithmIdentifier(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, false), false},
	x509.ECDSAWithSHA384: {crypto.SHA384, algorithmIdentifier(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, false), false},
	x509.ECDSAWithSHA512: {crypto.SHA512, algorithmIdentifier(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}, false), false},
}

func algorithmIdentifier(oid asn1.ObjectIdentifier, nullParameters bool) []byte {
	var b cryptobyte.Builder
	b.AddASN1(0x30, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if nullParameters {
			b.AddASN1NULL()
		}
	})
	return b.BytesOrPanic()
}

// digest hashes the TBSCertList: the Signer gets the digest, not the
// message, so that a CRL of tens of megabytes never goes to the HSM.
func (a signatureAlgorithm) digest(tbs []byte) []byte {
	h := a.hash.New()
	h.Write(tbs)
	return h.Sum(nil)
}

// verify checks sig over digest with the issuer's public key, as
// x509.CreateRevocationList did after signing: a faulty signer must not
// produce a CRL that relying parties reject.
func (a signatureAlgorithm) verify(pub crypto.PublicKey, digest, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if a.rsa {
			return rsa.VerifyPKCS1v15(k, a.hash, digest, sig)
		}
	case *ecdsa.PublicKey:
		if !a.rsa {
			if !ecdsa.VerifyASN1(k, digest, sig) {
				return errors.New("ECDSA verification error")
			}
			return nil
		}
	}
	return fmt.Errorf("a %T does not verify this algorithm's signatures", pub)
}

// maxSignatureLen bounds the length of a signature by pub: the modulus for
// RSA, a DER SEQUENCE of two integers for ECDSA. It only sizes a buffer.
func (a signatureAlgorithm) maxSignatureLen(pub crypto.PublicKey) int {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return k.Size()
	case *ecdsa.PublicKey:
		n := (k.Curve.Params().BitSize + 7) / 8
		return 3 + 2*(3+n)
	}
	return 1024
}

// signatureAlgorithmOf names the AlgorithmIdentifier id, for Check:
// x509.UnknownSignatureAlgorithm when it is none of signatureAlgorithms,
// byte for byte.
func signatureAlgorithmOf(id []byte) x509.SignatureAlgorithm {
	for alg, a := range signatureAlgorithms {
		if string(a.id) == string(id) {
			return alg
		}
	}
	return x509.UnknownSignatureAlgorithm
}
