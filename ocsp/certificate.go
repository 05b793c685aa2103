package ocsp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/internal/x509enc"
	"github.com/shomei-pki/shomei/internal/x509lint"
)

// responderCN is the common name added to the issuer's DN to name its
// delegated responder.
const responderCN = "OCSP Responder"

// NewResponderCertificate makes the DER delegated responder certificate of
// responderKey, signed by issuerSigner for issuer (RFC 6960 §4.2.2.2):
//
//   - subject: the issuer's DN followed by CN=OCSP Responder (a rotated
//     issuer key keeps its DN, so responders are told apart by key
//     identifiers, like issuers);
//   - keyUsage digitalSignature (critical), extKeyUsage id-kp-OCSPSigning,
//     id-pkix-ocsp-nocheck (NULL), subjectKeyIdentifier (SHA-1 of the key
//     bits), authorityKeyIdentifier; no basicConstraints, CRL or OCSP URL;
//   - the issuer key's signature algorithm (R-P1).
//
// nocheck means relying parties never check its revocation, so keep
// notBefore..notAfter short (days to weeks) and rotate it before notAfter.
// The certificate is first built with a throwaway key and run through
// zlint's RFC 5280 lints, then signed by issuerSigner and its signature
// checked with the issuer certificate.
func NewResponderCertificate(issuer *x509.Certificate, issuerSigner crypto.Signer, responderKey crypto.PublicKey, notBefore, notAfter time.Time, serial *big.Int) ([]byte, error) {
	if issuer == nil || issuerSigner == nil || responderKey == nil || serial == nil {
		return nil, errors.New("ocsp: issuer, issuerSigner, responderKey and serial are required")
	}
	if !issuer.IsCA || issuer.KeyUsage != 0 && issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("ocsp: issuer certificate is not a CA certificate that may sign certificates")
	}
	if pub, ok := issuerSigner.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(issuer.PublicKey) {
		return nil, errors.New("ocsp: issuerSigner's public key is not the issuer certificate's")
	}
	if _, err := signatureAlgorithm(responderKey); err != nil {
		return nil, fmt.Errorf("ocsp: responderKey: %w", err)
	}
	if serial.Sign() <= 0 || len(serial.Bytes()) > 20 {
		return nil, errors.New("ocsp: serial must be positive and at most 20 octets (RFC 5280 §4.1.2.2)")
	}
	if !notBefore.Before(notAfter) {
		return nil, fmt.Errorf("ocsp: notBefore %s is not before notAfter %s", rfc3339(notBefore), rfc3339(notAfter))
	}
	if notBefore.Before(issuer.NotBefore) || notAfter.After(issuer.NotAfter) {
		return nil, fmt.Errorf("ocsp: validity %s to %s is not within the issuer's, %s to %s",
			rfc3339(notBefore), rfc3339(notAfter), rfc3339(issuer.NotBefore), rfc3339(issuer.NotAfter))
	}
	subject, err := responderSubject(issuer.RawSubject)
	if err != nil {
		return nil, fmt.Errorf("ocsp: issuer subject: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(responderKey)
	if err != nil {
		return nil, fmt.Errorf("ocsp: responderKey: %w", err)
	}
	ski, err := x509enc.SubjectKeyID(spki)
	if err != nil {
		return nil, fmt.Errorf("ocsp: responderKey: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		RawSubject:   subject,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		SubjectKeyId: ski,
		ExtraExtensions: []pkix.Extension{
			{Id: oidOCSPNoCheck, Value: []byte{byte(cbasn1.NULL), 0}},
		},
	}

	// Lint before the issuer key signs.
	throwaway, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	parent := *issuer
	parent.PublicKey = throwaway.Public()
	draft, err := x509.CreateCertificate(rand.Reader, tmpl, &parent, responderKey, throwaway)
	if err != nil {
		return nil, fmt.Errorf("ocsp: build the responder certificate: %w", err)
	}
	if _, err := x509lint.Lint(draft); err != nil {
		return nil, fmt.Errorf("ocsp: responder certificate: %w", err)
	}

	// CreateCertificate checks the signature with issuerSigner.Public(),
	// which is the issuer certificate's key (checked above).
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, responderKey, issuerSigner)
	if err != nil {
		return nil, fmt.Errorf("ocsp: sign the responder certificate: %w", err)
	}
	return der, nil
}

// responderSubject is the issuer's DER Name with one more RDN,
// CN=OCSP Responder, its own RDNs kept byte for byte.
func responderSubject(issuerName []byte) ([]byte, error) {
	in := cryptobyte.String(issuerName)
	var rdns cryptobyte.String
	if !in.ReadASN1(&rdns, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("not a DER Name")
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(rdns)
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(x509enc.AttributeOID("CN"))
				b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) {
					b.AddBytes([]byte(responderCN))
				})
			})
		})
	})
	return b.Bytes()
}

// rfc3339 formats a time for an error message.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
