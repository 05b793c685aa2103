package profile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/ca/dn"
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
	sigAlg, err := algorithmIdentifier(t.sigAlg)
	if err != nil {
		return nil, &FieldError{"issuer", err.Error()}
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, 1024+len(req.Name)+len(req.Address)*3))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1Int64(2) // v3
		})
		b.AddASN1BigInt(req.Serial)
		b.AddBytes(sigAlg)
		b.AddBytes(issuer.RawSubject)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTime(b, req.NotBefore)
			addTime(b, req.NotAfter)
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

// addTime adds an X.509 Time as RFC 5280 §4.1.2.5 and Go's encoding/asn1
// write it: UTCTime for the years 1950 to 2049, GeneralizedTime otherwise,
// in UTC with whole seconds (validateValidity refuses fractions).
func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC()
	if y := t.Year(); y >= 1950 && y < 2050 {
		b.AddASN1UTCTime(t)
	} else {
		b.AddASN1GeneralizedTime(t)
	}
}

// DER AlgorithmIdentifiers of the issuer signature algorithms, as Go's
// crypto/x509 writes them: NULL parameters for RSA PKCS #1 v1.5, none for
// ECDSA (RFC 4055 §5, RFC 5758 §3.2).
var (
	algSHA256WithRSA   = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00}
	algECDSAWithSHA256 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	algECDSAWithSHA384 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}
)

func algorithmIdentifier(alg x509.SignatureAlgorithm) ([]byte, error) {
	switch alg {
	case x509.SHA256WithRSA:
		return algSHA256WithRSA, nil
	case x509.ECDSAWithSHA256:
		return algECDSAWithSHA256, nil
	case x509.ECDSAWithSHA384:
		return algECDSAWithSHA384, nil
	}
	return nil, fmt.Errorf("signature algorithm %v is not an issuer algorithm of R-P1", alg)
}

// SignatureAlgorithmIdentifier returns the DER AlgorithmIdentifier that an
// issuer key of pub's type signs with (see SignatureAlgorithm), as it
// appears in TBSCertificate and in the signed certificate.
func SignatureAlgorithmIdentifier(pub crypto.PublicKey) ([]byte, error) {
	alg, err := SignatureAlgorithm(pub)
	if err != nil {
		return nil, err
	}
	der, err := algorithmIdentifier(alg)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), der...), nil
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
	sigAlg, err := algorithmIdentifier(d.want.sigAlg)
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
	b := cryptobyte.NewBuilder(make([]byte, 0, len(d.TBS)+len(sigAlg)+len(sig)+16))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(d.TBS)
		b.AddBytes(sigAlg)
		b.AddASN1BitString(sig)
	})
	return b.Bytes()
}

// Attribute type OIDs of the names the profiles write, RFC 4519; the same
// set ca/dn accepts.
var attrTypes = map[string][]byte{
	"C":  {0x55, 0x04, 0x06},
	"ST": {0x55, 0x04, 0x08},
	"L":  {0x55, 0x04, 0x07},
	"O":  {0x55, 0x04, 0x0a},
	"OU": {0x55, 0x04, 0x0b},
	"CN": {0x55, 0x04, 0x03},
}

// marshalName returns d.Marshal()'s DER, one attribute per RDN, without
// encoding/asn1's reflection, which cost most of the profile's encoding
// time. Like encoding/asn1 for an untyped string, a value is a
// PrintableString when every byte is in its character set, and a
// UTF8String otherwise. The tests compare it with d.Marshal.
func marshalName(d dn.DN) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	// RDNSequence ::= SEQUENCE OF SET { SEQUENCE { OID, string } }, each
	// length known before its element is written.
	size := 0
	for _, a := range d {
		size += derSize(derSize(derSize(len(attrTypes[a.Type])) + derSize(len(a.Value))))
	}
	out := make([]byte, 0, derSize(size))
	out = appendHeader(out, byte(cbasn1.SEQUENCE), size)
	for _, a := range d {
		oid, ok := attrTypes[a.Type]
		if !ok {
			return nil, fmt.Errorf("dn: attribute type %q", a.Type)
		}
		tag := byte(cbasn1.PrintableString)
		if !printableString(a.Value) {
			tag = byte(cbasn1.UTF8String)
		}
		atv := derSize(len(oid)) + derSize(len(a.Value))
		out = appendHeader(out, byte(cbasn1.SET), derSize(atv))
		out = appendHeader(out, byte(cbasn1.SEQUENCE), atv)
		out = appendHeader(out, byte(cbasn1.OBJECT_IDENTIFIER), len(oid))
		out = append(out, oid...)
		out = appendHeader(out, tag, len(a.Value))
		out = append(out, a.Value...)
	}
	return out, nil
}

// derSize is the size of a DER element with n bytes of contents and a
// one-byte tag.
func derSize(n int) int {
	switch {
	case n < 0x80:
		return 2 + n
	case n <= 0xff:
		return 3 + n
	case n <= 0xffff:
		return 4 + n
	}
	return 5 + n // up to 16 MiB, far beyond any name
}

// appendHeader appends a one-byte tag and the DER length n.
func appendHeader(b []byte, tag byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, tag, byte(n))
	case n <= 0xff:
		return append(b, tag, 0x81, byte(n))
	case n <= 0xffff:
		return append(b, tag, 0x82, byte(n>>8), byte(n))
	}
	return append(b, tag, 0x83, byte(n>>16), byte(n>>8), byte(n))
}

// printableString reports whether encoding/asn1 would marshal s as a
// PrintableString: only A-Z a-z 0-9 space ' ( ) + , - . / : = ? (no '*'
// or '&', which it accepts only when parsing).
func printableString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == ' ', '\'' <= c && c <= ')', '+' <= c && c <= '/', c == ':', c == '=', c == '?':
		default:
			return false
		}
	}
	return true
}
