package profile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// Draft is a certificate of the profile before it is signed: the DER
// TBSCertificate the issuer key signs, and the profile's expectations that
// Check compares a certificate with.
type Draft struct {
	// TBS is the DER TBSCertificate of the request, issued by the issuer.
	// It is exactly the TBSCertificate that x509.CreateCertificate(rand,
	// Template(issuer, cfg, req), issuer, …) produces when it signs with
	// the issuer's key (the tests prove it byte for byte), encoded
	// directly: no signature is made and none verified. Its signature
	// AlgorithmIdentifier follows issuer.PublicKey (R-P1), as
	// SignatureAlgorithmIdentifier returns it.
	TBS []byte

	issuer *x509.Certificate
	cfg    Config
	req    Request
	want   *tbs
}

// NewDraft validates cfg and req and encodes the certificate's
// TBSCertificate. Its errors are those of Template.
//
// To lint the certificate before the issuer key signs it, parse
// LintCopy's certificate and give it to Check and Lint: it is the signed
// certificate but for the signature value, at which neither looks.
func NewDraft(issuer *x509.Certificate, cfg Config, req Request) (*Draft, error) {
	if len(cfg.IssuerAltName) == 0 {
		cfg.IssuerAltName = DefaultIssuerAltName()
	}
	t, err := build(issuer, cfg, req)
	if err != nil {
		return nil, err
	}
	sigAlg, err := x509enc.Algorithm(t.sigAlg)
	if err != nil {
		return nil, &FieldError{"issuer", err.Error()}
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, 1024+len(req.Name)+len(req.Address)*3))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1Int64(2) // v3
		})
		b.AddASN1BigInt(req.Serial)
		b.AddBytes(sigAlg.ID)
		b.AddBytes(issuer.RawSubject)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			x509enc.AddTime(b, req.NotBefore)
			x509enc.AddTime(b, req.NotAfter)
		})
		b.AddBytes(t.subject)
		b.AddBytes(t.spki)
		b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, e := range t.extensions {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(e.Id)
						if e.Critical { // DEFAULT FALSE: omitted when false (DER)
							b.AddASN1Boolean(true)
						}
						b.AddASN1OctetString(e.Value)
					})
				}
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("profile: encoding the TBSCertificate: %w", err)
	}
	return &Draft{TBS: der, issuer: issuer, cfg: cfg, req: req, want: t}, nil
}

// Check is Check(cert, issuer, cfg, req) for the draft's issuer, cfg and
// req, without validating and encoding them again.
func (d *Draft) Check(cert *x509.Certificate) error {
	if cert == nil {
		return &MismatchError{"no certificate"}
	}
	return check(cert, d.issuer, d.cfg, d.req, d.want)
}

// SignatureAlgorithmIdentifier returns the DER AlgorithmIdentifier that an
// issuer key of pub's type signs with (x509enc.ForPublicKey, R-P1), as it
// appears in TBSCertificate and in the signed certificate.
func SignatureAlgorithmIdentifier(pub crypto.PublicKey) ([]byte, error) {
	alg, err := x509enc.ForPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), alg.ID...), nil
}

// LintCopy returns the certificate that the draft becomes when the issuer
// key signs it, with a placeholder in place of the signature: the issuer's
// signature algorithm, and a signature value of the issuer key's size
// (zeros for RSA; a DER ECDSA-Sig-Value for ECDSA) that verifies under no
// key. Go's parser, Check and zlint read it as they read the signed
// certificate (none of them verifies the signature of a certificate that
// is not self-issued), so the CA lints exactly what it will have signed,
// before the HSM signs anything.
func (d *Draft) LintCopy() ([]byte, error) {
	alg, err := x509enc.Algorithm(d.want.sigAlg)
	if err != nil {
		return nil, &FieldError{"issuer", err.Error()}
	}
	var sig []byte
	switch k := d.issuer.PublicKey.(type) {
	case *rsa.PublicKey:
		sig = make([]byte, k.Size())
	case *ecdsa.PublicKey:
		// r and s of the curve's size, below its order.
		n := new(big.Int).Rsh(k.Curve.Params().N, 1)
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1BigInt(n)
			b.AddASN1BigInt(n)
		})
		if sig, err = b.Bytes(); err != nil {
			return nil, err
		}
	}
	return x509enc.Signed(d.TBS, alg.ID, sig), nil
}
