package profile

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// Extension and other OIDs, RFC 5280 unless noted.
var (
	oidExtAuthorityKeyID  = x509enc.OIDExtAuthorityKeyID
	oidExtKeyUsage        = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtSubjectAltName  = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidExtIssuerAltName   = asn1.ObjectIdentifier{2, 5, 29, 18}
	oidExtCRLDistribution = x509enc.OIDExtCRLDistributionPoints
	oidExtCertPolicies    = asn1.ObjectIdentifier{2, 5, 29, 32}
	oidExtSubjectKeyID    = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidExtAuthorityInfo   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}

	oidQualifierCPS = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 2, 1}
	oidAccessOCSP   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1}
)

// extensionNames are the names used in messages.
var extensionNames = []struct {
	oid  asn1.ObjectIdentifier
	name string
}{
	{oidExtAuthorityKeyID, "authorityKeyIdentifier"},
	{oidExtKeyUsage, "keyUsage"},
	{oidExtSubjectAltName, "subjectAltName"},
	{oidExtIssuerAltName, "issuerAltName"},
	{oidExtCRLDistribution, "cRLDistributionPoints"},
	{oidExtCertPolicies, "certificatePolicies"},
	{oidExtSubjectKeyID, "subjectKeyIdentifier"},
	{oidExtAuthorityInfo, "authorityInfoAccess"},
	{asn1.ObjectIdentifier{2, 5, 29, 19}, "basicConstraints"},
	{asn1.ObjectIdentifier{2, 5, 29, 37}, "extendedKeyUsage"},
}

func extensionName(oid asn1.ObjectIdentifier) string {
	for _, n := range extensionNames {
		if n.oid.Equal(oid) {
			return n.name
		}
	}
	return oid.String()
}

// otherName is one subjectAltName entry of the SIGN profile (R-P2).
type otherName struct {
	oid   asn1.ObjectIdentifier
	field string // the Request field it holds
}

// sanOrder is the order of the SIGN subjectAltName's otherNames (R-P2).
var sanOrder = []otherName{
	{asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 1}, "Name"},
	{asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 4}, "DateOfBirth"},
	{asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 3}, "Sex"},
	{asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 5}, "Address"},
	{asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 2}, "NameMap"},
	{asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 6}, "AddressMap"},
}

// sanValues are req's values in sanOrder.
func sanValues(req Request) []string {
	return []string{req.Name, req.DateOfBirth, req.Sex, req.Address, req.NameMap, req.AddressMap}
}

// GeneralName tags, RFC 5280 §4.2.1.6; x509enc has directoryName and URI.
var (
	tagOtherName = cbasn1.Tag(0).ContextSpecific().Constructed() // [0] IMPLICIT OtherName
	tagExplicit0 = cbasn1.Tag(0).ContextSpecific().Constructed() // [0] EXPLICIT
)

// extensions returns the extensions of the profile in R-P1's order:
// authorityKeyIdentifier, keyUsage, [subjectAltName, issuerAltName],
// cRLDistributionPoints, certificatePolicies, subjectKeyIdentifier,
// [authorityInfoAccess].
//
// ianDER and crlNameDER are the DER of cfg.IssuerAltName (SIGN only) and of
// req.CRL.Name.
func extensions(s spec, issuerKeyID, spki []byte, cfg Config, req Request, ianDER, crlNameDER []byte) ([]pkix.Extension, error) {
	ski, err := x509enc.SubjectKeyID(spki)
	if err != nil {
		return nil, err
	}
	type ext struct {
		oid      asn1.ObjectIdentifier
		critical bool
		value    func() ([]byte, error)
	}
	list := []ext{
		{oidExtAuthorityKeyID, false, func() ([]byte, error) { return x509enc.MarshalAuthorityKeyID(issuerKeyID) }},
		{oidExtKeyUsage, true, func() ([]byte, error) { return marshalKeyUsage(s.keyUsage) }},
	}
	if s.personal {
		list = append(list,
			ext{oidExtSubjectAltName, false, func() ([]byte, error) { return marshalSubjectAltName(sanValues(req)) }},
			ext{oidExtIssuerAltName, false, func() ([]byte, error) { return marshalIssuerAltName(ianDER) }})
	}
	list = append(list,
		ext{oidExtCRLDistribution, false, func() ([]byte, error) { return x509enc.MarshalCRLDistributionPoints(req.CRL.URL, crlNameDER) }},
		ext{oidExtCertPolicies, true, func() ([]byte, error) { return marshalCertificatePolicies(s.policy, cfg.CPSURL) }},
		ext{oidExtSubjectKeyID, false, func() ([]byte, error) { return x509enc.MarshalSubjectKeyID(ski), nil }})
	if cfg.OCSPURL != "" {
		list = append(list, ext{oidExtAuthorityInfo, false, func() ([]byte, error) { return marshalAuthorityInfoAccess(cfg.OCSPURL) }})
	}

	out := make([]pkix.Extension, len(list))
	for i, e := range list {
		v, err := e.value()
		if err != nil {
			return nil, fmt.Errorf("profile: encoding %s: %w", extensionName(e.oid), err)
		}
		out[i] = pkix.Extension{Id: e.oid, Critical: e.critical, Value: v}
	}
	return out, nil
}

// marshalKeyUsage: KeyUsage ::= BIT STRING, DER (no trailing zero bits).
// Only the first byte's bits are used by the profiles: the encoding is the
// tag, the length 2, the number of unused bits and the byte.
func marshalKeyUsage(ku x509.KeyUsage) ([]byte, error) {
	var bits byte
	n := 0
	for i := range 8 {
		if ku&(1<<i) != 0 {
			bits |= 0x80 >> i
			n = i + 1
		}
	}
	if n == 0 || ku >= 1<<8 {
		return nil, fmt.Errorf("key usage %b outside the first byte", ku)
	}
	return []byte{byte(cbasn1.BIT_STRING), 2, byte(8 - n), bits}, nil
}

// marshalSubjectAltName: GeneralNames of otherNames only, in sanOrder,
// each OtherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT UTF8String }.
func marshalSubjectAltName(values []string) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for i, on := range sanOrder {
			b.AddASN1(tagOtherName, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(on.oid)
				b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(values[i])) })
				})
			})
		}
	})
	return b.Bytes()
}

// marshalIssuerAltName: GeneralNames with one directoryName, the DER
// name der.
func marshalIssuerAltName(der []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(x509enc.TagDirectoryName, func(b *cryptobyte.Builder) { b.AddBytes(der) })
	})
	return b.Bytes()
}

// marshalCertificatePolicies: one PolicyInformation { policy, { CPS URI
// qualifier } }.
func marshalCertificatePolicies(policy asn1.ObjectIdentifier, cps string) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(policy)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidQualifierCPS)
					b.AddASN1(cbasn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(cps)) })
				})
			})
		})
	})
	return b.Bytes()
}

// marshalAuthorityInfoAccess: one AccessDescription { id-ad-ocsp, URI }.
func marshalAuthorityInfoAccess(ocsp string) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidAccessOCSP)
			b.AddASN1(x509enc.TagURI, func(b *cryptobyte.Builder) { b.AddBytes([]byte(ocsp)) })
		})
	})
	return b.Bytes()
}
