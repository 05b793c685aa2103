package x509enc

import (
	"bytes"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CRL distribution points (R-R5). A certificate's cRLDistributionPoints
// (RFC 5280 §4.2.1.13) and its CRL's issuingDistributionPoint (§5.2.5) name
// the CRL partition with the same DistributionPointName: fullName, a URI
// then a directoryName. This file is their one encoder and one parser.
//
// The URI comes first: Go's crypto/x509 parser stops reading fullName at
// the first name that is not a URI, so with the directoryName first Go
// relying parties would see no CRL URL at all. The order of the names of
// one DistributionPoint carries no meaning in RFC 5280, and OpenSSL and
// zlint read both orders.

// Tags of the distribution point structures and of GeneralName (RFC 5280
// §4.2.1.6; the module is IMPLICIT, but a tag on a CHOICE is explicit).
var (
	tagDistributionPoint     = cbasn1.Tag(0).ContextSpecific().Constructed() // distributionPoint [0] DistributionPointName
	tagFullName              = cbasn1.Tag(0).ContextSpecific().Constructed() // fullName [0] IMPLICIT GeneralNames
	tagOnlyContainsUserCerts = cbasn1.Tag(1).ContextSpecific()               // onlyContainsUserCerts [1] IMPLICIT BOOLEAN
	// TagURI is GeneralName's uniformResourceIdentifier [6] IMPLICIT IA5String.
	TagURI = cbasn1.Tag(6).ContextSpecific()
	// TagDirectoryName is GeneralName's directoryName [4] EXPLICIT Name.
	TagDirectoryName = cbasn1.Tag(4).ContextSpecific().Constructed()
)

// The problems the parsers find; each error they return is one of these.
var (
	ErrDPMalformed     = errors.New("malformed")
	ErrDPNotOne        = errors.New("more than one DistributionPoint; want one (R-R5)")
	ErrDPNoName        = errors.New("no distributionPoint name")
	ErrDPMoreFields    = errors.New("has reasons or cRLIssuer")
	ErrDPNotFullName   = errors.New("the distributionPoint is not a fullName")
	ErrDPNames         = errors.New("the fullName is not a URI then a directoryName (R-R5)")
	ErrIDPNotUserCerts = errors.New("lacks onlyContainsUserCerts TRUE")
	ErrIDPMoreFields   = errors.New("has fields besides the distribution point and onlyContainsUserCerts")
)

// addDistributionPointName adds distributionPoint [0] { fullName [0] {
// uniformResourceIdentifier, directoryName } }.
func addDistributionPointName(b *cryptobyte.Builder, uri string, directoryName []byte) {
	b.AddASN1(tagDistributionPoint, func(b *cryptobyte.Builder) {
		b.AddASN1(tagFullName, func(b *cryptobyte.Builder) {
			b.AddASN1(TagURI, func(b *cryptobyte.Builder) { b.AddBytes([]byte(uri)) })
			b.AddASN1(TagDirectoryName, func(b *cryptobyte.Builder) { b.AddBytes(directoryName) })
		})
	})
}

// MarshalCRLDistributionPoints is the cRLDistributionPoints value naming
// the partition at uri whose DER name is directoryName: one
// DistributionPoint with the name only (no reasons, no cRLIssuer).
func MarshalCRLDistributionPoints(uri string, directoryName []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addDistributionPointName(b, uri, directoryName)
		})
	})
	return b.Bytes()
}

// MarshalIssuingDistributionPoint is the issuingDistributionPoint value of
// the partition's CRL: the same name and onlyContainsUserCerts TRUE,
// nothing else.
func MarshalIssuingDistributionPoint(uri string, directoryName []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addDistributionPointName(b, uri, directoryName)
		b.AddASN1(tagOnlyContainsUserCerts, func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
	})
	return b.Bytes()
}

// readDistributionPointName reads the fullName of a distributionPoint
// field's contents, which must be all of it.
func readDistributionPointName(dpName cryptobyte.String) (uri string, directoryName []byte, err error) {
	var fullName, u, d cryptobyte.String
	if !dpName.ReadASN1(&fullName, tagFullName) || !dpName.Empty() {
		return "", nil, ErrDPNotFullName
	}
	if !fullName.ReadASN1(&u, TagURI) || !fullName.ReadASN1(&d, TagDirectoryName) || !fullName.Empty() {
		return "", nil, ErrDPNames
	}
	return string(u), d, nil
}

// ParseCRLDistributionPoints reads the URI and the DER directoryName of a
// cRLDistributionPoints value as MarshalCRLDistributionPoints writes it:
// exactly one DistributionPoint, its fullName a URI then a directoryName,
// nothing else. The error is one of the ErrDP values.
func ParseCRLDistributionPoints(value []byte) (uri string, directoryName []byte, err error) {
	in := cryptobyte.String(value)
	var points, point, dpName cryptobyte.String
	if !in.ReadASN1(&points, cbasn1.SEQUENCE) || !in.Empty() || !points.ReadASN1(&point, cbasn1.SEQUENCE) {
		return "", nil, ErrDPMalformed
	}
	if !points.Empty() {
		return "", nil, ErrDPNotOne
	}
	if !point.ReadASN1(&dpName, tagDistributionPoint) {
		return "", nil, ErrDPNoName
	}
	if !point.Empty() {
		return "", nil, ErrDPMoreFields
	}
	return readDistributionPointName(dpName)
}

// ParseIssuingDistributionPoint reads the URI and the DER directoryName of
// an issuingDistributionPoint value as MarshalIssuingDistributionPoint
// writes it: the fullName, a URI then a directoryName, and
// onlyContainsUserCerts TRUE, nothing else. The error is ErrDPMalformed,
// ErrDPNoName, ErrDPNotFullName, ErrDPNames, ErrIDPNotUserCerts or
// ErrIDPMoreFields.
func ParseIssuingDistributionPoint(value []byte) (uri string, directoryName []byte, err error) {
	in := cryptobyte.String(value)
	var idp, dpName cryptobyte.String
	var hasDP bool
	if !in.ReadASN1(&idp, cbasn1.SEQUENCE) || !in.Empty() || !idp.ReadOptionalASN1(&dpName, &hasDP, tagDistributionPoint) {
		return "", nil, ErrDPMalformed
	}
	if !hasDP {
		return "", nil, ErrDPNoName
	}
	if uri, directoryName, err = readDistributionPointName(dpName); err != nil {
		return "", nil, err
	}
	var user cryptobyte.String
	if !idp.ReadASN1(&user, tagOnlyContainsUserCerts) || !bytes.Equal(user, []byte{0xff}) {
		return uri, directoryName, ErrIDPNotUserCerts
	}
	if !idp.Empty() {
		return uri, directoryName, ErrIDPMoreFields
	}
	return uri, directoryName, nil
}
