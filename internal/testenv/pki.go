package testenv

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"time"

	"github.com/shomei-pki/shomei/ca/serial"
)

// Certify signs tmpl, certifying the public key pub, with key as the
// issuer parent, and parses the result: a certificate made by crypto/x509
// for a test or a benchmark, not by Shomei's CA.
func Certify(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// SelfSigned is tmpl certifying key's public key, signed by key itself.
func SelfSigned(tmpl *x509.Certificate, key crypto.Signer) (*x509.Certificate, error) {
	return Certify(tmpl, tmpl, key.Public(), key)
}

// IssuerTemplate is an issuer certificate shaped like ca/issuer's, before
// signing: serial 1, the DER subject rawSubject, valid from 2025-01-01 to
// 2045-01-01 (UTC), a CA with path length 0 that signs certificates and
// CRLs (R-P1). ski is its subjectKeyIdentifier; when nil, crypto/x509
// derives one from the key (RFC 5280 method 1, as ca/issuer does).
func IssuerTemplate(rawSubject, ski []byte) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		RawSubject:            rawSubject,
		NotBefore:             time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski,
	}
}

// Serial is a new random certificate serial as the CA makes them
// (serial.New, R-P1). It panics if the system's randomness fails, which
// leaves a test nothing to run on.
func Serial() *big.Int {
	n, err := serial.New()
	if err != nil {
		panic(err)
	}
	return n
}
