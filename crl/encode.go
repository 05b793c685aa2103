package crl

import (
	"encoding/asn1"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The encoder writes the DER of RFC 5280 §5.1 directly: cryptobyte for the
// structure, and each revokedCertificates entry appended byte by byte from
// its sort key and times, without a big.Int, a time.Time string or an
// allocation per entry. The whole CertificateList is written into one
// buffer sized in advance (every length is known before the first byte is
// written), leaving room in front for the outer SEQUENCE header and after
// for the signature, so that a million-entry CRL is never copied.

// outerHeadroom is room for the CertificateList's tag and length in front
// of the TBSCertList: a length of up to 2³² - 1 octets takes 5.
const outerHeadroom = 1 + 5

// encodeTBS writes the TBSCertList of req to buf[tbs:]; buf has
// outerHeadroom bytes in front of it and capacity for the signature after
// it (assemble).
func encodeTBS(req Request, pl *plan, alg signatureAlgorithm) (buf []byte, tbs int, err error) {
	exts, err := encodeExtensions(req, pl)
	if err != nil {
		return nil, 0, err
	}
	entries := 0
	for i := range pl.sorted {
		k := &pl.sorted[i]
		entries += entryLen(k, &req.Entries[k.index])
	}
	content := 3 + len(alg.id) + len(req.Issuer.RawSubject) + timeLen(pl.thisUpdate) + timeLen(pl.nextUpdate) + len(exts)
	if len(pl.sorted) > 0 {
		content += tlvLen(entries)
	}
	trailer := len(alg.id) + tlvLen(1+alg.maxSignatureLen(req.Issuer.PublicKey))
	b := cryptobyte.NewBuilder(make([]byte, outerHeadroom, outerHeadroom+tlvLen(content)+trailer))

	var scratch [maxEntryLen]byte
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1) // version v2
		b.AddBytes(alg.id)
		b.AddBytes(req.Issuer.RawSubject)
		b.AddBytes(appendTime(scratch[:0], pl.thisUpdate))
		b.AddBytes(appendTime(scratch[:0], pl.nextUpdate))
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
	return buf, outerHeadroom, nil
}

// encodeExtensions is the TBSCertList's crlExtensions field, [0] EXPLICIT
// Extensions: authorityKeyIdentifier, cRLNumber and the critical
// issuingDistributionPoint, in the order x509.CreateRevocationList wrote
// them (its own two, then ExtraExtensions).
func encodeExtensions(req Request, pl *plan) ([]byte, error) {
	aki, err := marshalAuthorityKeyID(req.Issuer.SubjectKeyId)
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

// marshalAuthorityKeyID is AuthorityKeyIdentifier ::= SEQUENCE {
// keyIdentifier [0] } as x509.CreateRevocationList writes it.
func marshalAuthorityKeyID(keyID []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(keyID) })
	})
	return b.Bytes()
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
	invalidityDatePrefix = []byte{0x30, 24, 0x06, 3, 0x55, 0x1d, 0x18, 0x04, generalizedTimeLen}
	// reasonCodePrefix is a reasonCode extension up to its value octet:
	// SEQUENCE (10) { OID 2.5.29.21, OCTET STRING (3) { ENUMERATED (1) } }.
	reasonCodePrefix = []byte{0x30, 10, 0x06, 3, 0x55, 0x1d, 0x15, 0x04, 3, byte(cbasn1.ENUM), 1}
)

const (
	invalidityDateLen = 9 + generalizedTimeLen // an invalidityDate extension
	reasonCodeLen     = 12                     // a reasonCode extension
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
	n := 2 + 2 + len(mag) + int(mag[0]>>7) + timeLen(e.RevokedAt)
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
	b = appendTime(b, e.RevokedAt)
	if exts > 0 {
		b = append(b, byte(cbasn1.SEQUENCE), byte(exts))
		if !e.InvalidityDate.IsZero() {
			b = append(b, invalidityDatePrefix...)
			b = appendGeneralizedTime(b, e.InvalidityDate)
		}
		if e.Reason != 0 {
			b = append(b, reasonCodePrefix...)
			b = append(b, byte(e.Reason))
		}
	}
	return b
}

// Times. RFC 5280 §4.1.2.5 (and §5.1.2.4-6 for CRLs): UTCTime
// YYMMDDHHMMSSZ through 2049, GeneralizedTime YYYYMMDDHHMMSSZ from 2050,
// always in UTC (Z) and without fractional seconds. encoding/asn1 chose
// the same for x509.CreateRevocationList. The invalidityDate is always a
// GeneralizedTime (§5.3.2).

const (
	utcTimeLen         = 2 + 13 // a DER UTCTime, tag and length included
	generalizedTimeLen = 2 + 15 // a DER GeneralizedTime, tag and length included
)

// utcTimeFrom and utcTimeUntil bound the times written as UTCTime, in Unix
// seconds: 1950-01-01 to 2049-12-31 23:59:59 UTC.
var (
	utcTimeFrom  = time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	utcTimeUntil = time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

// isUTCTime reports whether t is written as a UTCTime.
func isUTCTime(t time.Time) bool {
	u := t.Unix() // rounded down: the second t is in
	return utcTimeFrom <= u && u < utcTimeUntil
}

// timeLen is the length of the DER Time of t.
func timeLen(t time.Time) int {
	if isUTCTime(t) {
		return utcTimeLen
	}
	return generalizedTimeLen
}

// appendTime appends the DER Time of t, to the second, rounded down. t's
// year must be 1950 to 9999 (prepare checks).
func appendTime(b []byte, t time.Time) []byte {
	if isUTCTime(t) {
		b = append(b, byte(cbasn1.UTCTime), utcTimeLen-2)
		return appendDigits(b, t.UTC(), false)
	}
	return appendGeneralizedTime(b, t)
}

// appendGeneralizedTime appends the DER GeneralizedTime of t, to the
// second, rounded down. t's year must be 1950 to 9999.
func appendGeneralizedTime(b []byte, t time.Time) []byte {
	b = append(b, byte(cbasn1.GeneralizedTime), generalizedTimeLen-2)
	return appendDigits(b, t.UTC(), true)
}

// appendDigits appends [YY]YYMMDDHHMMSSZ of t, four year digits when
// century is set. It is time.AppendFormat for this one layout, at a
// fraction of its cost: Build writes up to two times per entry.
func appendDigits(b []byte, t time.Time, century bool) []byte {
	year, month, day := t.Date()
	hour, minute, second := t.Clock()
	if century {
		b = append2(b, year/100)
	}
	b = append2(b, year%100)
	b = append2(b, int(month))
	b = append2(b, day)
	b = append2(b, hour)
	b = append2(b, minute)
	b = append2(b, second)
	return append(b, 'Z')
}

// append2 appends n, 0 to 99, as two decimal digits.
func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// tlvLen is the length of a DER TLV of a short-form tag whose contents are
// n octets long.
func tlvLen(n int) int {
	switch {
	case n < 0x80:
		return 2 + n
	case n < 1<<8:
		return 3 + n
	case n < 1<<16:
		return 4 + n
	case n < 1<<24:
		return 5 + n
	}
	return 6 + n
}

// assemble makes the CertificateList ::= SEQUENCE { tbsCertList,
// signatureAlgorithm, signatureValue BIT STRING } around buf[tbs:], the
// TBSCertList encodeTBS wrote, in place: the signature goes after it and
// the SEQUENCE's tag and length in the headroom before it.
func assemble(buf []byte, tbs int, alg signatureAlgorithm, sig []byte) []byte {
	buf = append(buf, alg.id...)
	buf = appendHeader(buf, cbasn1.BIT_STRING, 1+len(sig))
	buf = append(buf, 0) // no unused bits
	buf = append(buf, sig...)
	header := appendHeader(make([]byte, 0, outerHeadroom), cbasn1.SEQUENCE, len(buf)-tbs)
	start := tbs - len(header)
	copy(buf[start:], header)
	return buf[start:]
}

// appendHeader appends the DER tag and length of a TLV whose contents are
// n octets long.
func appendHeader(b []byte, tag cbasn1.Tag, n int) []byte {
	b = append(b, byte(tag))
	if n < 0x80 {
		return append(b, byte(n))
	}
	octets := 0
	for l := n; l > 0; l >>= 8 {
		octets++
	}
	b = append(b, 0x80|byte(octets))
	for i := octets - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b
}
