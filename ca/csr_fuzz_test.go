package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// FuzzParseCSR feeds the card-request parser arbitrary bytes: it must
// either accept a request whose signature verifies with an accepted key
// (R-P1) or refuse it with a violation naming the field, never panic.
func FuzzParseCSR(f *testing.F) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []any{rsaKey, ecKey} {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "card"}}, k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der, true)
		f.Add(der[:len(der)/2], false)
	}
	f.Add([]byte{}, false)
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff}, true)
	// A correctly signed request larger than MaxCSRBytes (a 6 KB
	// extension), refused before it is parsed.
	huge, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "card"},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: make([]byte, 6000)}}}, rsaKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(huge, false)
	// RSA keys above MaxRSABits, refused before their signature is checked:
	// one that fits in MaxCSRBytes and one that does not.
	f.Add(unsignedRSARequest(f, 8192), false)
	f.Add(unsignedRSARequest(f, 16384), true)
	f.Fuzz(func(t *testing.T, der []byte, allowP256 bool) {
		var vs violations
		k := parseCSR(&vs, "profiles[0].csr", der, allowP256)
		switch {
		case len(vs.list) == 0 && k.pub == nil:
			t.Fatal("no violation and no key")
		case len(vs.list) > 0 && k.pub != nil:
			t.Fatal("a violation and a key")
		}
		for _, v := range vs.list {
			if v.Field != "profiles[0].csr" || v.Rule == "" {
				t.Fatalf("violation without its field or rule: %+v", v)
			}
		}
		if k.pub != nil {
			if len(der) > MaxCSRBytes {
				t.Fatalf("accepted a request of %d bytes, more than MaxCSRBytes", len(der))
			}
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil || csr.CheckSignature() != nil {
				t.Fatal("accepted a request that does not parse or verify")
			}
			if r, ok := csr.PublicKey.(*rsa.PublicKey); ok && (r.N.BitLen() < MinRSABits || r.N.BitLen() > MaxRSABits) {
				t.Fatalf("accepted an RSA key of %d bits", r.N.BitLen())
			}
		}
	})
}

// unsignedRSARequest is a PKCS#10 request for an RSA key of bits bits that
// nobody holds (a random modulus), with a signature that verifies under
// nothing: what an attacker sends to make the CA check a signature with a
// huge key without paying for the key.
func unsignedRSARequest(f *testing.F, bits int) []byte {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	if err != nil {
		f.Fatal(err)
	}
	n.SetBit(n, bits-1, 1).SetBit(n, 0, 1)
	var pub cryptobyte.Builder
	pub.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(n)
		b.AddASN1Int64(65537)
	})
	algorithm := func(b *cryptobyte.Builder, oid asn1.ObjectIdentifier) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1NULL()
		})
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(0)
			b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				algorithm(b, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1})
				b.AddASN1BitString(pub.BytesOrPanic())
			})
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(*cryptobyte.Builder) {})
		})
		algorithm(b, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11})
		b.AddASN1BitString(make([]byte, bits/8))
	})
	return b.BytesOrPanic()
}
