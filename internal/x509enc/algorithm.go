package x509enc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	_ "crypto/sha256" // crypto.SHA256.New
	_ "crypto/sha512" // crypto.SHA384.New, crypto.SHA512.New
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignatureAlgorithm is one signature algorithm Shomei signs with or
// names: RSA PKCS #1 v1.5 (the opts of crypto.Signer are the Hash) or
// ECDSA with an ASN.1 DER signature, as crypto.Signer returns it. There is
// no RSA-PSS: R-P1 never chooses it.
type SignatureAlgorithm struct {
	Algorithm x509.SignatureAlgorithm
	Hash      crypto.Hash
	// ID is the DER AlgorithmIdentifier as crypto/x509 writes it: NULL
	// parameters for RSA (RFC 4055 §5), none for ECDSA (RFC 5758 §3.2).
	ID  []byte
	RSA bool // PKCS #1 v1.5; ECDSA otherwise
}

// signatureAlgorithms is the one signature-algorithm table of Shomei
// (issue 10): certificates, CRLs and OCSP responses are signed, and the
// algorithms of CRLs and certificates named, from it. ForPublicKey chooses
// among its first three (R-P1); the others are here so that a checker can
// name what it finds.
var signatureAlgorithms = []*SignatureAlgorithm{
	newAlgorithm(x509.SHA256WithRSA, crypto.SHA256, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, true),
	newAlgorithm(x509.ECDSAWithSHA256, crypto.SHA256, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, false),
	newAlgorithm(x509.ECDSAWithSHA384, crypto.SHA384, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, false),
	newAlgorithm(x509.SHA384WithRSA, crypto.SHA384, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}, true),
	newAlgorithm(x509.SHA512WithRSA, crypto.SHA512, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}, true),
	newAlgorithm(x509.ECDSAWithSHA512, crypto.SHA512, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}, false),
}

func newAlgorithm(alg x509.SignatureAlgorithm, h crypto.Hash, oid asn1.ObjectIdentifier, rsa bool) *SignatureAlgorithm {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if rsa {
			b.AddASN1NULL()
		}
	})
	return &SignatureAlgorithm{Algorithm: alg, Hash: h, ID: b.BytesOrPanic(), RSA: rsa}
}

// Algorithm returns the table's entry of alg, or an error for an algorithm
// Shomei does not sign with.
func Algorithm(alg x509.SignatureAlgorithm) (*SignatureAlgorithm, error) {
	for _, a := range signatureAlgorithms {
		if a.Algorithm == alg {
			return a, nil
		}
	}
	return nil, fmt.Errorf("signature algorithm %v is not one Shomei signs with", alg)
}

// AlgorithmOf names a DER AlgorithmIdentifier: x509.UnknownSignatureAlgorithm
// when it is none of the table's, byte for byte.
func AlgorithmOf(id []byte) x509.SignatureAlgorithm {
	for _, a := range signatureAlgorithms {
		if string(a.ID) == string(id) {
			return a.Algorithm
		}
	}
	return x509.UnknownSignatureAlgorithm
}

// ForPublicKey is what a key of pub's type signs certificates, CRLs and
// OCSP responses with (R-P1): sha256WithRSAEncryption for RSA, ECDSA with
// SHA-256 for P-256 and with SHA-384 for P-384. Other curves (P-521
// included) and other key types are refused.
func ForPublicKey(pub crypto.PublicKey) (*SignatureAlgorithm, error) {
	var alg x509.SignatureAlgorithm
	switch k := pub.(type) {
	case *rsa.PublicKey:
		alg = x509.SHA256WithRSA
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			alg = x509.ECDSAWithSHA256
		case elliptic.P384():
			alg = x509.ECDSAWithSHA384
		default:
			return nil, fmt.Errorf("ECDSA curve %s is not supported; R-P1 signs with P-256 or P-384", k.Curve.Params().Name)
		}
	case nil:
		return nil, errors.New("no public key")
	default:
		return nil, fmt.Errorf("%T keys are not supported; R-P1 signs with RSA or ECDSA", pub)
	}
	return Algorithm(alg)
}

// Digest hashes msg: signers get the digest, not the message, so that a
// CRL of tens of megabytes never goes to the HSM.
func (a *SignatureAlgorithm) Digest(msg []byte) []byte {
	h := a.Hash.New()
	h.Write(msg)
	return h.Sum(nil)
}

// Verify checks sig over digest with pub, as crypto/x509 does after
// signing: a faulty signer must not produce what relying parties reject.
func (a *SignatureAlgorithm) Verify(pub crypto.PublicKey, digest, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if a.RSA {
			return rsa.VerifyPKCS1v15(k, a.Hash, digest, sig)
		}
	case *ecdsa.PublicKey:
		if !a.RSA {
			if !ecdsa.VerifyASN1(k, digest, sig) {
				return errors.New("ECDSA verification error")
			}
			return nil
		}
	}
	return fmt.Errorf("a %T does not verify %v signatures", pub, a.Algorithm)
}

// MaxSignatureLen bounds the length of a signature by pub: the modulus for
// RSA, a DER SEQUENCE of two integers for ECDSA. It only sizes buffers.
func (a *SignatureAlgorithm) MaxSignatureLen(pub crypto.PublicKey) int {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return k.Size()
	case *ecdsa.PublicKey:
		n := (k.Curve.Params().BitSize + 7) / 8
		return 3 + 2*(3+n)
	}
	return 1024
}
