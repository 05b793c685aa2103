package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
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
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil || csr.CheckSignature() != nil {
				t.Fatal("accepted a request that does not parse or verify")
			}
		}
	})
}
