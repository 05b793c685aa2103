package profile_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/shomei-pki/shomei/ca/profile"
)

// BenchmarkTemplateCreate is the cost of building and signing one
// certificate with Template and x509.CreateCertificate: with a throwaway
// RSA-1024 key (how a lint copy used to be made) and with an RSA-2048 key
// (a software stand-in for the issuer key). Compare BenchmarkNewDraft.
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
	forEachProfile(b, func(b *testing.B, r profile.Request, issuer *x509.Certificate) {
		for b.Loop() {
			if _, err := profile.Template(issuer, config(), r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	forEachProfile(b, func(b *testing.B, r profile.Request, issuer *x509.Certificate) {
		cert, _ := issue(b, issuer, key("ca"), config(), r)
		for b.Loop() {
			if err := profile.Check(cert, issuer, config(), r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkLint(b *testing.B) {
	forEachProfile(b, func(b *testing.B, r profile.Request, issuer *x509.Certificate) {
		_, der := issue(b, issuer, key("ca"), config(), r)
		if _, err := profile.Lint(der); err != nil { // builds the registry
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := profile.Lint(der); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIssueCycle is the whole per-certificate cost of the CA's cycle
// with a software issuer key: the lint pass (BenchmarkLintPass), then the
// RSA-2048 issuer key (a software stand-in for the HSM) signs the TBS.
func BenchmarkIssueCycle(b *testing.B) {
	issuer := newIssuer(b, sign, key("ca"))
	r := signRequest()
	for b.Loop() {
		d := lintPass(b, issuer, r)
		digest := sha256.Sum256(d.TBS)
		if _, err := key("ca").Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewDraft is the cost of encoding the TBSCertificate the
// HSM signs, and of the lint copy around it.
func BenchmarkNewDraft(b *testing.B) {
	forEachProfile(b, func(b *testing.B, r profile.Request, issuer *x509.Certificate) {
		for b.Loop() {
			d, err := profile.NewDraft(issuer, config(), r)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := d.LintCopy(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLintPass is the CA's whole lint pass of one certificate: encode,
// wrap with the placeholder signature, parse, Check, Lint.
func BenchmarkLintPass(b *testing.B) {
	forEachProfile(b, func(b *testing.B, r profile.Request, issuer *x509.Certificate) {
		for b.Loop() {
			lintPass(b, issuer, r)
		}
	})
}

// forEachProfile runs bench as a sub-benchmark per profile, named after
// it, with the profile's request and a software issuer of the profile.
func forEachProfile(b *testing.B, bench func(b *testing.B, r profile.Request, issuer *x509.Certificate)) {
	for _, req := range []func() profile.Request{signRequest, authRequest} {
		r := req()
		issuer := newIssuer(b, r.Profile, key("ca"))
		b.Run(r.Profile.String(), func(b *testing.B) { bench(b, r, issuer) })
	}
}

// lintPass is the CA's lint pass of r: the draft, its lint copy parsed,
// checked against the profile and linted. It returns the draft, whose TBS
// the issuer key signs next.
func lintPass(b *testing.B, issuer *x509.Certificate, r profile.Request) *profile.Draft {
	b.Helper()
	d, err := profile.NewDraft(issuer, config(), r)
	if err != nil {
		b.Fatal(err)
	}
	der, err := d.LintCopy()
	if err != nil {
		b.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Check(cert); err != nil {
		b.Fatal(err)
	}
	if _, err := profile.Lint(der); err != nil {
		b.Fatal(err)
	}
	return d
}
