package ocsp_test

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/ocsp"
)

func TestNewResponderCertificate(t *testing.T) {
	f := loadFixture(t)
	g := f.gen1
	rc := g.responder
	if !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) || len(rc.ExtKeyUsage) != 1 {
		t.Errorf("extKeyUsage %v", rc.ExtKeyUsage)
	}
	if rc.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("keyUsage %v", rc.KeyUsage)
	}
	if rc.BasicConstraintsValid || rc.IsCA {
		t.Errorf("basicConstraints present")
	}
	if !bytes.Equal(rc.AuthorityKeyId, g.cert.SubjectKeyId) || len(rc.SubjectKeyId) != 20 {
		t.Errorf("AKI %x SKI %x", rc.AuthorityKeyId, rc.SubjectKeyId)
	}
	if err := rc.CheckSignatureFrom(g.cert); err != nil {
		t.Error(err)
	}
	var issuerRDNs, responderRDNs cryptobyte.String
	is, rs := cryptobyte.String(g.cert.RawSubject), cryptobyte.String(rc.RawSubject)
	is.ReadASN1(&issuerRDNs, cbasn1.SEQUENCE)
	rs.ReadASN1(&responderRDNs, cbasn1.SEQUENCE)
	if len(issuerRDNs) == 0 || !bytes.HasPrefix(responderRDNs, issuerRDNs) || rc.Subject.CommonName != "OCSP Responder" {
		t.Errorf("subject %q, want the issuer's %q with CN=OCSP Responder", rc.Subject, g.cert.Subject)
	}
	var nocheck, keyUsageCritical bool
	for _, e := range rc.Extensions {
		switch {
		case e.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}):
			nocheck = bytes.Equal(e.Value, []byte{5, 0}) && !e.Critical
		case e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 15}):
			keyUsageCritical = e.Critical
		}
	}
	if !nocheck || !keyUsageCritical {
		t.Errorf("nocheck %v, keyUsage critical %v", nocheck, keyUsageCritical)
	}
	if rc.SignatureAlgorithm != x509.SHA256WithRSA || f.gen2.responder.SignatureAlgorithm != x509.ECDSAWithSHA384 {
		t.Errorf("signature algorithms %v, %v", rc.SignatureAlgorithm, f.gen2.responder.SignatureAlgorithm)
	}

	now := time.Now()
	key := mustECDSA(elliptic.P256())
	leafAsIssuer := g.leaf(serialGood)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	tests := []struct {
		name   string
		issuer *x509.Certificate
		signer crypto.Signer
		pub    crypto.PublicKey
		nb, na time.Time
		serial *big.Int
		want   string
	}{
		{name: "not a CA", issuer: leafAsIssuer, signer: g.key, pub: key.Public(), nb: now, na: now.Add(time.Hour), serial: big.NewInt(9), want: "not a CA"},
		{name: "wrong signer", issuer: g.cert, signer: key, pub: key.Public(), nb: now, na: now.Add(time.Hour), serial: big.NewInt(9), want: "issuerSigner"},
		{name: "Ed25519 responder", issuer: g.cert, signer: g.key, pub: edKey.Public(), nb: now, na: now.Add(time.Hour), serial: big.NewInt(9), want: "not supported"},
		{name: "RSA-1024 responder", issuer: g.cert, signer: g.key, pub: smallRSA.Public(), nb: now, na: now.Add(time.Hour), serial: big.NewInt(9), want: "at least 2048"},
		// Not an R-P1 curve: x509enc.ForPublicKey refuses it, as for issuers.
		{name: "P-521 responder", issuer: g.cert, signer: g.key, pub: mustECDSA(elliptic.P521()).Public(), nb: now, na: now.Add(time.Hour), serial: big.NewInt(9), want: "P-521 is not supported"},
		{name: "zero serial", issuer: g.cert, signer: g.key, pub: key.Public(), nb: now, na: now.Add(time.Hour), serial: big.NewInt(0), want: "serial"},
		{name: "21-octet serial", issuer: g.cert, signer: g.key, pub: key.Public(), nb: now, na: now.Add(time.Hour), serial: new(big.Int).Lsh(big.NewInt(1), 161), want: "serial"},
		{name: "backwards", issuer: g.cert, signer: g.key, pub: key.Public(), nb: now, na: now, serial: big.NewInt(9), want: "not before"},
		{name: "outlives the issuer", issuer: g.cert, signer: g.key, pub: key.Public(), nb: now, na: g.cert.NotAfter.Add(time.Second), serial: big.NewInt(9), want: "not within"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ocsp.NewResponderCertificate(tc.issuer, tc.signer, tc.pub, tc.nb, tc.na, tc.serial)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

// TestNewRefuses checks Config and Issuer validation.
func TestNewRefuses(t *testing.T) {
	f := loadFixture(t)
	g := f.gen1
	now := time.Now()
	// A responder certificate made by hand without nocheck, or without the
	// OCSP signing EKU.
	handmade := func(eku []x509.ExtKeyUsage, nocheck bool) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(77),
			Subject:      pkix.Name{CommonName: "handmade"},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  eku,
		}
		if nocheck {
			tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}, Value: []byte{5, 0}}}
		}
		c, err := testenv.Certify(tmpl, g.cert, g.signer.Public(), g.key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	expiredDER, err := ocsp.NewResponderCertificate(g.cert, g.key, g.signer.Public(), now.Add(-2*time.Hour), now.Add(-time.Hour), big.NewInt(78))
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := x509.ParseCertificate(expiredDER)
	src := newFakeSource()
	ok := g.issuer()
	other := mustECDSA(elliptic.P256())
	tests := []struct {
		name string
		cfg  ocsp.Config
		want string
	}{
		{name: "no source", cfg: ocsp.Config{Issuers: []*ocsp.Issuer{ok}}, want: "Source"},
		{name: "no issuers", cfg: ocsp.Config{Source: src}, want: "Issuers is empty"},
		{name: "nil issuer", cfg: ocsp.Config{Source: src, Issuers: []*ocsp.Issuer{nil}}, want: "Issuers[0]"},
		{name: "short validity", cfg: ocsp.Config{Source: src, Issuers: []*ocsp.Issuer{ok}, Validity: time.Second}, want: "Validity"},
		{name: "bad path", cfg: ocsp.Config{Source: src, Issuers: []*ocsp.Issuer{ok}, Path: "/ocsp/"}, want: "Path"},
		{name: "negative MaxAge", cfg: ocsp.Config{Source: src, Issuers: []*ocsp.Issuer{ok}, MaxAge: -time.Second}, want: "MaxAge"},
		{name: "same issuer twice", cfg: ocsp.Config{Source: src, Issuers: []*ocsp.Issuer{ok, g.issuer()}}, want: "same issuer key"},
		{name: "responder of another issuer", cfg: ocsp.Config{Source: src, Issuers: []*ocsp.Issuer{{Certificate: g.cert, Responder: f.gen2.responder, Signer: f.gen2.signer}}}, want: "not signed by the issuer"},
		{name: "signer does not match", cfg: ocsp.Config{Source: src, Issuers: []*ocsp.Issuer{{Certificate: g.cert, Responder: g.responder, Signer: other}}}, want: "Signer's public key"},
		{name: "no OCSPSigning", cfg: ocsp.Config{Source: src, Issuers: []*ocsp.Issuer{{Certificate: g.cert, Responder: handmade([]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, true), Signer: g.signer}}}, want: "id-kp-OCSPSigning"},
		{name: "no nocheck", cfg: ocsp.Config{Source: src, Issuers: []*ocsp.Issuer{{Certificate: g.cert, Responder: handmade([]x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, false), Signer: g.signer}}}, want: "nocheck"},
		{name: "expired responder", cfg: ocsp.Config{Source: src, Issuers: []*ocsp.Issuer{{Certificate: g.cert, Responder: expired, Signer: g.signer}}}, want: "not now"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ocsp.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}
