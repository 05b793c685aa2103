package issuer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/shomei-pki/shomei/ca/serial"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

// template is an issuer certificate before signing.
func template(name x509enc.DN, pub crypto.PublicKey, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	raw, err := name.Marshal()
	if err != nil {
		return nil, err
	}
	ski, err := x509enc.SubjectKeyIDOf(pub)
	if err != nil {
		return nil, err
	}
	sigAlg, err := x509enc.ForPublicKey(pub) // R-P1
	if err != nil {
		return nil, err
	}
	sn, err := serial.New() // R-P1
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          sn,
		RawSubject:            raw,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// Issuers sign holder certificates, OCSP responders and CRLs only.
		MaxPathLen:         0,
		MaxPathLenZero:     true,
		SubjectKeyId:       ski,
		SignatureAlgorithm: sigAlg.Algorithm,
	}, nil
}

// throwawayKey makes a software key of the same type as alg, for the lint pass.
func throwawayKey(alg hsm.KeyAlgorithm) (crypto.Signer, error) {
	switch alg {
	case hsm.ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case hsm.ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case hsm.RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case hsm.RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return rsa.GenerateKey(rand.Reader, 2048)
}

// build makes the self-signed issuer certificate for signer. It lints a copy
// signed by a throwaway key before asking the HSM for a signature, and checks
// the real certificate again afterwards.
func build(name x509enc.DN, signer crypto.Signer, alg hsm.KeyAlgorithm, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	lintKey, err := throwawayKey(alg)
	if err != nil {
		return nil, err
	}
	lintTmpl, err := template(name, lintKey.Public(), notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	if _, err := sign(lintTmpl, lintKey, name, notBefore, notAfter); err != nil {
		return nil, fmt.Errorf("issuer certificate fails its profile before signing: %w", err)
	}
	tmpl, err := template(name, signer.Public(), notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	cert, err := sign(tmpl, signer, name, notBefore, notAfter)
	if err != nil {
		return nil, fmt.Errorf("issuer certificate signed in the HSM: %w", err)
	}
	return cert, nil
}

// sign creates, parses and checks a self-signed certificate.
func sign(tmpl *x509.Certificate, key crypto.Signer, name x509enc.DN, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return cert, Check(cert, name, notBefore, notAfter)
}

// Check verifies that cert is a well-formed Shomei issuer certificate with
// the given name and validity: X.509 v3, self-signed with a valid signature,
// the DN encoded one attribute per RDN in order, a CA with path length 0,
// keyCertSign and cRLSign only, and a subject key identifier that matches
// its key.
func Check(cert *x509.Certificate, name x509enc.DN, notBefore, notAfter time.Time) error {
	errs := checkCA(cert, name, notBefore, notAfter)
	if !bytes.Equal(cert.RawIssuer, cert.RawSubject) {
		errs = append(errs, errors.New("issuer differs from subject"))
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		errs = append(errs, fmt.Errorf("self-signature: %v", err))
	}
	return errors.Join(errs...)
}

// checkCA checks what every issuer certificate, self-signed or link, must
// be: X.509 v3, the subject name, a CA with path length 0, keyCertSign and
// cRLSign only, no extendedKeyUsage, a subject key identifier that matches
// its key, the validity and a well-formed serial.
func checkCA(cert *x509.Certificate, name x509enc.DN, notBefore, notAfter time.Time) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	want, err := name.Marshal()
	if err != nil {
		return append(errs, err)
	}
	ski, err := x509enc.SubjectKeyIDOf(cert.PublicKey)
	if err != nil {
		return append(errs, err)
	}
	if cert.Version != 3 {
		fail("version %d, want 3", cert.Version)
	}
	if !bytes.Equal(cert.RawSubject, want) {
		fail("subject is not %s", name)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		fail("basicConstraints must be CA with pathLenConstraint 0")
	}
	if cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		fail("keyUsage %b, want keyCertSign and cRLSign", cert.KeyUsage)
	}
	if len(cert.ExtKeyUsage) > 0 || len(cert.UnknownExtKeyUsage) > 0 {
		fail("an issuer certificate carries no extendedKeyUsage")
	}
	if !bytes.Equal(cert.SubjectKeyId, ski) {
		fail("subjectKeyIdentifier does not match the public key")
	}
	if !cert.NotBefore.Equal(notBefore) || !cert.NotAfter.Equal(notAfter) {
		fail("validity %s..%s, want %s..%s", cert.NotBefore, cert.NotAfter, notBefore, notAfter)
	}
	if n := cert.SerialNumber; n.Sign() <= 0 || n.BitLen() < 64 || len(n.Bytes()) > 20 {
		fail("serial number must be positive, at least 64 bits and at most 20 octets")
	}
	return errs
}
