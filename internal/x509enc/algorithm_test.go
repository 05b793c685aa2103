package x509enc

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/internal/testenv"
)

// testKeys are one key of each type the table signs with, made once.
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	return map[string]crypto.Signer{"rsa": rsaKey, "p256": p256, "p384": p384, "p521": p521}
})

// selfSigned is a CA certificate of key signed with alg by crypto/x509.
func selfSigned(t *testing.T, key crypto.Signer, alg x509.SignatureAlgorithm) *x509.Certificate {
	t.Helper()
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x509enc test"},
		NotBefore: now, NotAfter: now.AddDate(1, 0, 0), SignatureAlgorithm: alg,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	cert, err := testenv.SelfSigned(tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestSignatureAlgorithmsAreCryptoX509s: every entry of the table is the
// AlgorithmIdentifier crypto/x509 writes into certificates and CRLs, is
// named back by AlgorithmOf, and signs (Digest, a crypto.Signer) and
// verifies a certificate spliced together with Signed that crypto/x509
// accepts.
func TestSignatureAlgorithmsAreCryptoX509s(t *testing.T) {
	keys := testKeys()
	for _, a := range signatureAlgorithms {
		t.Run(a.Algorithm.String(), func(t *testing.T) {
			key := keys["p384"]
			if a.RSA {
				key = keys["rsa"]
			}
			cert := selfSigned(t, key, a.Algorithm)
			id, err := SignatureAlgorithmOf(cert.Raw)
			if err != nil || !bytes.Equal(id, a.ID) {
				t.Fatalf("crypto/x509 writes %x, the table has %x (%v)", id, a.ID, err)
			}
			if got := AlgorithmOf(id); got != a.Algorithm {
				t.Errorf("AlgorithmOf = %v", got)
			}
			if got, err := Algorithm(a.Algorithm); err != nil || got != a {
				t.Errorf("Algorithm = %v, %v", got, err)
			}
			crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
				SignatureAlgorithm: a.Algorithm, Number: big.NewInt(1),
				ThisUpdate: cert.NotBefore, NextUpdate: cert.NotBefore.Add(time.Hour),
			}, cert, key)
			if err != nil {
				t.Fatal(err)
			}
			if id, err := SignatureAlgorithmOf(crlDER); err != nil || !bytes.Equal(id, a.ID) {
				t.Errorf("crypto/x509 writes %x into a CRL, the table has %x (%v)", id, a.ID, err)
			}

			// Sign the certificate's TBS again the way Shomei does.
			digest := a.Digest(cert.RawTBSCertificate)
			sig, err := key.Sign(rand.Reader, digest, a.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Verify(key.Public(), digest, sig); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if n := a.MaxSignatureLen(key.Public()); len(sig) > n {
				t.Errorf("signature of %d octets, MaxSignatureLen %d", len(sig), n)
			}
			again, err := x509.ParseCertificate(Signed(cert.RawTBSCertificate, a.ID, sig))
			if err != nil {
				t.Fatal(err)
			}
			if err := again.CheckSignatureFrom(again); err != nil {
				t.Errorf("spliced certificate: %v", err)
			}
			other := keys["rsa"]
			if a.RSA {
				other = keys["p256"]
			}
			if err := a.Verify(other.Public(), digest, sig); err == nil {
				t.Error("Verify accepts a key of the other type")
			}
		})
	}
	if got := AlgorithmOf([]byte{0x30, 0x00}); got != x509.UnknownSignatureAlgorithm {
		t.Errorf("AlgorithmOf(empty SEQUENCE) = %v", got)
	}
	if _, err := Algorithm(x509.SHA256WithRSAPSS); err == nil {
		t.Error("Algorithm(SHA256WithRSAPSS): no error")
	}
}

// TestForPublicKey is R-P1's choice of algorithm, and its refusals.
func TestForPublicKey(t *testing.T) {
	keys := testKeys()
	edKey, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		pub  crypto.PublicKey
		want x509.SignatureAlgorithm
		err  string
	}{
		{"RSA", keys["rsa"].Public(), x509.SHA256WithRSA, ""},
		{"P-256", keys["p256"].Public(), x509.ECDSAWithSHA256, ""},
		{"P-384", keys["p384"].Public(), x509.ECDSAWithSHA384, ""},
		{"P-521 is not an R-P1 curve", keys["p521"].Public(), 0, "P-521 is not supported"},
		{"Ed25519", edKey, 0, "not supported"},
		{"nil", nil, 0, "no public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ForPublicKey(tc.pub)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ForPublicKey = %v, %v; want an error containing %q", a, err, tc.err)
				}
				return
			}
			if err != nil || a.Algorithm != tc.want {
				t.Fatalf("ForPublicKey = %v, %v; want %v", a, err, tc.want)
			}
			// The chosen algorithm is the one crypto/x509 picks by default.
			var key crypto.Signer
			for _, k := range keys {
				if k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.pub) {
					key = k
				}
			}
			if got := selfSigned(t, key, 0).SignatureAlgorithm; got != tc.want {
				t.Errorf("crypto/x509's default for this key is %v", got)
			}
		})
	}
}
