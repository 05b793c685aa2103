package profile_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"github.com/shomei-pki/shomei/ca/profile"
)

// BenchmarkTemplateCreate is the cost of building and signing one
// certificate: with a throwaway RSA-1024 key (the lint copy) and with an
// RSA-2048 key (a software stand-in for the issuer key).
func BenchmarkTemplateCreate(b *testing.B) {
	issuer := newIssuer(b, sign, key("ca"))
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		signer crypto.Signer
	}{{"RSA-1024", small}, {"RSA-2048", key("ca")}} {
		parent := *issuer
		parent.PublicKey = bc.signer.Public()
		for _, req := range []func() profile.Request{signRequest, authRequest} {
			r := req()
			b.Run(bc.name+"/"+r.Profile.String(), func(b *testing.B) {
				for b.Loop() {
					tmpl, err := profile.Template(issuer, config(), r)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := x509.CreateCertificate(rand.Reader, tmpl, &parent, tmpl.PublicKey, bc.signer); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkTemplate is the cost of Template alone, without signing.
func BenchmarkTemplate(b *testing.B) {
	for _, req := range []func() profile.Request{signRequest, authRequest} {
		r := req()
		issuer := newIssuer(b, r.Profile, key("ca"))
		b.Run(r.Profile.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := profile.Template(issuer, config(), r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCheck(b *testing.B) {
	for _, req := range []func() profile.Request{signRequest, authRequest} {
		r := req()
		issuer := newIssuer(b, r.Profile, key("ca"))
		cert, _ := issue(b, issuer, key("ca"), config(), r)
		b.Run(r.Profile.String(), func(b *testing.B) {
			for b.Loop() {
				if err := profile.Check(cert, issuer, config(), r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLint(b *testing.B) {
	for _, req := range []func() profile.Request{signRequest, authRequest} {
		r := req()
		issuer := newIssuer(b, r.Profile, key("ca"))
		_, der := issue(b, issuer, key("ca"), config(), r)
		if _, err := profile.Lint(der); err != nil { // builds the registry
			b.Fatal(err)
		}
		b.Run(r.Profile.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := profile.Lint(der); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIssueCycle is the whole per-certificate cost of the CA's cycle
// with software keys: build, sign with a throwaway RSA-1024 key, Check,
// Lint, sign with the RSA-2048 issuer key, Check, Lint.
func BenchmarkIssueCycle(b *testing.B) {
	issuer := newIssuer(b, sign, key("ca"))
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		b.Fatal(err)
	}
	lintParent := *issuer
	lintParent.PublicKey = small.Public()
	r := signRequest()
	for b.Loop() {
		tmpl, err := profile.Template(issuer, config(), r)
		if err != nil {
			b.Fatal(err)
		}
		for _, pass := range []struct {
			parent *x509.Certificate
			signer crypto.Signer
		}{{&lintParent, small}, {issuer, key("ca")}} {
			der, err := x509.CreateCertificate(rand.Reader, tmpl, pass.parent, tmpl.PublicKey, pass.signer)
			if err != nil {
				b.Fatal(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				b.Fatal(err)
			}
			if err := profile.Check(cert, issuer, config(), r); err != nil {
				b.Fatal(err)
			}
			if _, err := profile.Lint(der); err != nil {
				b.Fatal(err)
			}
		}
	}
}
