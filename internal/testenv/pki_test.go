package testenv_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/internal/testenv"
)

// An issuer made with IssuerTemplate and SelfSigned is what ca/issuer
// makes (R-P1): a CA with path length 0 for certificates and CRLs, under
// the given subject, signed by its own key, with the given key id; and a
// certificate made with Certify chains to it.
func TestIssuerAndCertify(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	subject, err := asn1.Marshal(pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	ski := []byte{1, 2, 3, 4}
	issuer, err := testenv.SelfSigned(testenv.IssuerTemplate(subject, ski), key)
	if err != nil {
		t.Fatal(err)
	}
	if !issuer.IsCA || issuer.MaxPathLen != 0 || !issuer.MaxPathLenZero || issuer.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("issuer: cA %v, path length %d (zero %v), key usage %v", issuer.IsCA, issuer.MaxPathLen, issuer.MaxPathLenZero, issuer.KeyUsage)
	}
	if !bytes.Equal(issuer.RawSubject, subject) || !bytes.Equal(issuer.RawIssuer, subject) || !bytes.Equal(issuer.SubjectKeyId, ski) {
		t.Errorf("issuer: subject %x, issuer %x, key id %x", issuer.RawSubject, issuer.RawIssuer, issuer.SubjectKeyId)
	}
	if err := issuer.CheckSignatureFrom(issuer); err != nil {
		t.Errorf("issuer is not signed by its own key: %v", err)
	}

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	leaf, err := testenv.Certify(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: now, NotAfter: now.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}, issuer, leafKey.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.CheckSignatureFrom(issuer); err != nil {
		t.Errorf("the certified leaf does not chain to the issuer: %v", err)
	}
	if !leafKey.PublicKey.Equal(leaf.PublicKey) {
		t.Error("the leaf certifies another key")
	}
}

// A Clock reads what it was set to and moved by, nothing else.
func TestClock(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	c := testenv.NewClock(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Errorf("new clock: %v, want %v", got, t0)
	}
	c.Add(90 * time.Second)
	if got := c.Now(); !got.Equal(t0.Add(90 * time.Second)) {
		t.Errorf("after Add: %v", got)
	}
	t1 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	c.Set(t1)
	if got := c.Now(); !got.Equal(t1) {
		t.Errorf("after Set: %v, want %v", got, t1)
	}
}
