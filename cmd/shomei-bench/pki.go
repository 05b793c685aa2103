package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/x509enc"
	"github.com/shomei-pki/shomei/ocsp"
)

// issuerDN is the SIGN issuer's DN of R-P1, one attribute per RDN.
func issuerDN() ([]byte, error) {
	rdn := func(oid asn1.ObjectIdentifier, v string) []pkix.AttributeTypeAndValue {
		return []pkix.AttributeTypeAndValue{{Type: oid, Value: v}}
	}
	c, o, ou := asn1.ObjectIdentifier{2, 5, 4, 6}, asn1.ObjectIdentifier{2, 5, 4, 10}, asn1.ObjectIdentifier{2, 5, 4, 11}
	return asn1.Marshal(pkix.RDNSequence{
		rdn(c, "JP"), rdn(o, "JPKI"), rdn(ou, "JPKI for digital signature"),
		rdn(ou, "Japan Agency for Local Authority Information Systems"),
	})
}

// randomSerial is a positive 127-bit certificate serial.
func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	b[0] = b[0]&0x7f | 0x01
	return new(big.Int).SetBytes(b), nil
}

// newIssuerCertificate makes a self-signed CA certificate for key, valid
// from now-1h for ten years.
func newIssuerCertificate(key crypto.Signer, now time.Time) (*x509.Certificate, error) {
	dn, err := issuerDN()
	if err != nil {
		return nil, err
	}
	ski, err := x509enc.SubjectKeyIDOf(key.Public())
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            dn,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          ski,
	}
	cert, err := testenv.SelfSigned(tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("sign the issuer certificate: %w", err)
	}
	return cert, nil
}

// newResponder certifies responderKey as the issuer's delegated OCSP
// responder for a week (ocsp.NewResponderCertificate's profile).
func newResponder(issuer *x509.Certificate, issuerKey crypto.Signer, responderKey crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	der, err := ocsp.NewResponderCertificate(issuer, issuerKey, responderKey, now.Add(-time.Minute), now.Add(7*24*time.Hour), serial)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// pki is the benchmark's issuer and its two delegated responders.
type pki struct {
	Issuer *x509.Certificate
	// Responder is Shomei's: its key (ResponderRef) is in the HSM.
	Responder    *x509.Certificate
	ResponderRef hsm.KeyRef
	// PeerResponder is openssl's, with a software key (PeerKey):
	// `openssl ocsp -rkey` reads its key from a file.
	PeerResponder *x509.Certificate
	PeerKey       *rsa.PrivateKey
}

// Key labels in the throwaway token.
const (
	issuerKeyLabel    = "bench-issuer"
	responderKeyLabel = "bench-ocsp-responder"
)

// newPKI generates an RSA-2048 issuer key and Shomei's RSA-2048 responder
// key in the token, the self-signed issuer certificate, and a software
// RSA-2048 responder key and certificate for openssl, both responders
// certified by the issuer key in the HSM.
func newPKI(ctx context.Context, tok *hsm.Token, now time.Time) (*pki, error) {
	issuerKey, err := tok.GenerateKey(ctx, hsm.KeyRef{Label: issuerKeyLabel, ID: []byte{1}}, hsm.RSA2048)
	if err != nil {
		return nil, err
	}
	p := &pki{ResponderRef: hsm.KeyRef{Label: responderKeyLabel, ID: []byte{2}}}
	responderKey, err := tok.GenerateKey(ctx, p.ResponderRef, hsm.RSA2048)
	if err != nil {
		return nil, err
	}
	if p.Issuer, err = newIssuerCertificate(issuerKey, now); err != nil {
		return nil, err
	}
	if p.Responder, err = newResponder(p.Issuer, issuerKey, responderKey.Public(), now); err != nil {
		return nil, fmt.Errorf("shomei's responder certificate: %w", err)
	}
	if p.PeerKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if p.PeerResponder, err = newResponder(p.Issuer, issuerKey, p.PeerKey.Public(), now); err != nil {
		return nil, fmt.Errorf("the peer's responder certificate: %w", err)
	}
	return p, nil
}

// writePEM writes blocks of one type to a new file, readable by the owner
// only (one of them is a private key).
func writePEM(path, blockType string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600)
}
