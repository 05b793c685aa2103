package crl

import (
	"encoding/asn1"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// The encoder writes the DER of RFC 5280 §5.1 directly: cryptobyte for the
// structure, and each revokedCertificates entry appended byte by byte from
// its sort key and times, without a big.Int, a time.Time string or an
// allocation per entry. The whole CertificateList is written into one
// buffer sized in advance (every length is known before the first byte is
// written), leaving room in front for the outer SEQUENCE header and after
// for the signature (x509enc.AppendSigned), so that a million-entry CRL is
// never copied. Times, lengths and the DER shared with certificates come
// from internal/x509enc.

// encodeTBS writes the TBSCertList of req to buf[tbs:]; buf has
// x509enc.Headroom bytes in front of it and capacity for the signature
// after it (x509enc.AppendSigned).
func encodeTBS(req Request, pl *plan, alg *x509enc.SignatureAlgorithm) (buf []byte, tbs int, err error) {
	exts, err := encodeExtensions(req, pl)
	if err != nil {
		return nil, 0, err
	}
	entries := 0
	for i := range pl.sorted {
		k := &pl.sorted[i]
		entries += entryLen(k, &req.Entries[k.index])
	}
	content := 3 + len(alg.ID) + len(req.Issuer.RawSubject) + x509enc.TimeLen(pl.thisUpdate) + x509enc.TimeLen(pl.nextUpdate) + len(exts)
	if len(pl.sorted) > 0 {
		content += x509enc.Size(entries)
	}
	trailer := x509enc.SignedSize(len(alg.ID), alg.MaxSignatureLen(req.Issuer.PublicKey))
	b := cryptobyte.NewBuilder(make([]byte, x509enc.Headroom, x509enc.Headroom+x509enc.Size(content)+trailer))

	var scratch [maxEntryLen]byte
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1) // version v2
		b.AddBytes(alg.ID)
		b.AddBytes(req.Issuer.RawSubject)
		b.AddBytes(x509enc.AppendTime(scratch[:0], pl.thisUpdate))
		b.AddBytes(x509enc.AppendTime(scratch[:0], pl.nextUpdate))
		// An empty partition has no revokedCertificates at all (RFC 5280
		// §5.1.2.6), not an empty one.
		if len(pl.sorted) > 0 {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for i := range pl.sorted {
					k := &pl.sorted[i]
					b.AddBytes(appendEntry(scratch[:0], k, &req.Entries[k.index]))
				}
			})
		}
		b.AddBytes(exts)
	})
	buf, err = b.Bytes()
	if err != nil {
		return nil, 0, fmt.Errorf("encoding the TBSCertList: %w", err)
	}
	return buf, x509enc.Headroom, nil
}

// encodeExtensions is the TBSCertList's crlExtensions field, [0] EXPLICIT
// Extensions: authorityKeyIdentifier, cRLNumber and the critical
// issuingDistributionPoint, in the order x509.CreateRevocationList wrote
// them (its own two, then ExtraExtensions).
func encodeExtensions(req Request, pl *plan) ([]byte, error) {
	aki, err := x509enc.MarshalAuthorityKeyID(req.Issuer.SubjectKeyId)
	if err != nil {
		return nil, err
	}
	var number cryptobyte.Builder
	number.AddASN1BigInt(req.Number) // not negative (prepare)
	crlNumber, err := number.Bytes()
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addExtension(b, oidExtAuthorityKeyID, false, aki)
			addExtension(b, oidExtCRLNumber, false, crlNumber)
			addExtension(b, oidExtIssuingDistributionPoint, true, pl.idp)
		})
	})
	return b.Bytes()
}

// addExtension adds Extension ::= SEQUENCE { extnID, critical BOOLEAN
// DEFAULT FALSE, extnValue OCTET STRING }; DER leaves out a FALSE critical.
func addExtension(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, critical bool, value []byte) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1OctetString(value)
	})
}

// Entries. A revokedCertificates entry is
//
//	SEQUENCE {
//	  userCertificate    INTEGER        -- the serial: at most 2+21 octets
//	  revocationDate     Time           -- 15 (UTCTime) or 17 octets
//	  crlEntryExtensions SEQUENCE {     -- absent when empty: 2+26+12 octets
//	    SEQUENCE { invalidityDate, OCTET STRING { GeneralizedTime } }  -- 26 octets, when set
//	    SEQUENCE { reasonCode, OCTET STRING { ENUMERATED } }           -- 12 octets, unless 0
//	  }
//	}
//
// in the order x509.CreateRevocationList wrote the extensions (it appended
// the reasonCode it made after the invalidityDate given as an
// ExtraExtension). Its contents are at most 80 octets, so every length in
// it is one octet.
const maxEntryLen = 2 + (2 + 21) + 17 + (2 + 26 + 12)

var (
	// invalidityDatePrefix is an invalidityDate extension up to its
	// GeneralizedTime: SEQUENCE (24) { OID 2.5.29.24, OCTET STRING (17) }.
	invalidityDatePrefix = []byte{0x30, 24, 0x06, 3, 0x55, 0x1d, 0x18, 0x04, x509enc.GeneralizedTimeLen}
	// reasonCodePrefix is a reasonCode extension up to its value octet:
	// SEQUENCE (10) { OID 2.5.29.21, OCTET STRING (3) { ENUMERATED (1) } }.
	reasonCodePrefix = []byte{0x30, 10, 0x06, 3, 0x55, 0x1d, 0x15, 0x04, 3, byte(cbasn1.ENUM), 1}
)

const (
	invalidityDateLen = 9 + x509enc.GeneralizedTimeLen // an invalidityDate extension
	reasonCodeLen     = 12                             // a reasonCode extension
)

// entryExtensionsLen is the length of the contents of e's
// crlEntryExtensions; 0 when it has none.
func entryExtensionsLen(e *Entry) int {
	n := 0
	if !e.InvalidityDate.IsZero() {
		n += invalidityDateLen
	}
	if e.Reason != 0 {
		n += reasonCodeLen
	}
	return n
}

// entryLen is the length of the entry of e, whose serial is k's, tag and
// length included (a two-octet header: the content is at most 80 octets).
func entryLen(k *sortKey, e *Entry) int {
	mag := k.magnitude()
	n := 2 + 2 + len(mag) + int(mag[0]>>7) + x509enc.TimeLen(e.RevokedAt)
	if exts := entryExtensionsLen(e); exts > 0 {
		n += 2 + exts
	}
	return n
}

// appendEntry appends the DER revokedCertificates entry of e, whose serial
// is k's. e was validated (prepare): the serial is positive and at most 20
// octets, the reason a CRLReason, the times' years 1950-9999.
func appendEntry(b []byte, k *sortKey, e *Entry) []byte {
	mag := k.magnitude()
	exts := entryExtensionsLen(e)
	b = append(b, byte(cbasn1.SEQUENCE), byte(entryLen(k, e)-2))
	// A positive INTEGER: a leading zero octet when the top bit is set.
	if mag[0]&0x80 != 0 {
		b = append(b, byte(cbasn1.INTEGER), byte(len(mag)+1), 0)
	} else {
		b = append(b, byte(cbasn1.INTEGER), byte(len(mag)))
	}
	b = append(b, mag...)
	b = x509enc.AppendTime(b, e.RevokedAt)
	if exts > 0 {
		b = append(b, byte(cbasn1.SEQUENCE), byte(exts))
		if !e.InvalidityDate.IsZero() {
			b = append(b, invalidityDatePrefix...)
			b = x509enc.AppendGeneralizedTime(b, e.InvalidityDate)
		}
		if e.Reason != 0 {
			b = append(b, reasonCodePrefix...)
			b = append(b, byte(e.Reason))
		}
	}
	return b
}
