package crl

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shomei-pki/shomei/ca/dn"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Check verifies that der is exactly the CRL Build promises for req: a v2
// CRL, nothing after it, signed by req.Issuer's key with the algorithm of
// its type; issuer name the bytes of req.Issuer.RawSubject; thisUpdate and
// nextUpdate as requested (to the second, UTCTime through 2049); exactly
// the extensions authorityKeyIdentifier, cRLNumber and a critical
// issuingDistributionPoint, in that order, each byte for byte; and the
// requested entries, sorted by ascending serial with no duplicates, each
// with its revocationDate and exactly its invalidityDate (GeneralizedTime)
// and reasonCode (absent for 0) extensions, non-critical, in that order.
//
// It does not use req.Signer. A bad request gives Build's errors
// (ErrInvalidRequest); every difference is a *MismatchError wrapping
// ErrMismatch, all joined (at most ten of a kind, then a count).
func Check(der []byte, req Request) error {
	pl, err := prepare(req, false)
	if err != nil {
		return err
	}
	var ps problems
	fail := func(kind, format string, args ...any) {
		ps.add(kind, &MismatchError{req.Partition.Name, fmt.Sprintf(format, args...)})
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return &MismatchError{req.Partition.Name, fmt.Sprintf("not a CRL Go can parse: %v", err)}
	}
	if len(rl.Raw) != len(der) {
		fail("trailing", "%d bytes after the CRL", len(der)-len(rl.Raw))
	}
	if msg := outerShape(rl.Raw); msg != "" {
		fail("shape", "%s", msg)
	}
	for _, msg := range tbsShape(rl.RawTBSRevocationList) {
		fail("shape", "%s", msg)
	}
	if rl.SignatureAlgorithm != pl.sigAlg {
		fail("signature", "signature algorithm %v, want %v for the issuer's key", rl.SignatureAlgorithm, pl.sigAlg)
	}
	if err := rl.CheckSignatureFrom(req.Issuer); err != nil {
		fail("signature", "signature does not verify with the issuer's key: %v", err)
	}
	if !bytes.Equal(rl.RawIssuer, req.Issuer.RawSubject) {
		fail("issuer", "issuer name is not the issuer certificate's subject")
	}
	if !rl.ThisUpdate.Equal(pl.thisUpdate) {
		fail("thisUpdate", "thisUpdate %s, want %s", rl.ThisUpdate.UTC().Format(time.RFC3339), pl.thisUpdate.UTC().Format(time.RFC3339))
	}
	if !rl.NextUpdate.Equal(pl.nextUpdate) {
		fail("nextUpdate", "nextUpdate %s, want %s", rl.NextUpdate.UTC().Format(time.RFC3339), pl.nextUpdate.UTC().Format(time.RFC3339))
	}
	checkListExtensions(rl, req, pl, fail)
	checkEntries(rl.RevokedCertificateEntries, req.Entries, pl.order, fail)
	return ps.err(func(p string) error { return &MismatchError{req.Partition.Name, p} })
}

// outerShape reports a CertificateList that is not exactly tbsCertList,
// signatureAlgorithm and signatureValue, or "".
func outerShape(raw []byte) string {
	in := cryptobyte.String(raw)
	var list cryptobyte.String
	if !in.ReadASN1(&list, cbasn1.SEQUENCE) ||
		!list.SkipASN1(cbasn1.SEQUENCE) || !list.SkipASN1(cbasn1.SEQUENCE) || !list.SkipASN1(cbasn1.BIT_STRING) {
		return "malformed CertificateList"
	}
	if !list.Empty() {
		return "CertificateList has data after the signature"
	}
	return ""
}

// tbsShape reports what Go's parser lets through but Build never writes:
// a nextUpdate missing or of the wrong time type, an empty
// revokedCertificates (an empty partition omits it), no extensions, and
// anything after the extensions.
func tbsShape(raw []byte) []string {
	in := cryptobyte.String(raw)
	var tbs cryptobyte.String
	if !in.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.INTEGER) || // version, v2 (the parser checks)
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature
		!tbs.SkipASN1(cbasn1.SEQUENCE) { // issuer
		return []string{"malformed TBSCertList"}
	}
	var out []string
	for _, field := range []string{"thisUpdate", "nextUpdate"} {
		if msg := timeShape(&tbs, field); msg != "" {
			return append(out, msg)
		}
	}
	var revoked cryptobyte.String
	var present bool
	if !tbs.ReadOptionalASN1(&revoked, &present, cbasn1.SEQUENCE) {
		return append(out, "malformed revokedCertificates")
	}
	if present && revoked.Empty() {
		out = append(out, "revokedCertificates is present but empty; a CRL with no entries omits it (RFC 5280 §5.1.2.6)")
	}
	if !tbs.SkipASN1(cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return append(out, "no crlExtensions")
	}
	if !tbs.Empty() {
		out = append(out, "TBSCertList has data after crlExtensions")
	}
	return out
}

// timeShape reads a Time and says if it is missing or not the type RFC
// 5280 §5.1.2.4 asks for its year: UTCTime through 2049, GeneralizedTime
// from 2050.
func timeShape(tbs *cryptobyte.String, field string) string {
	var t time.Time
	var utc bool
	switch {
	case tbs.PeekASN1Tag(cbasn1.UTCTime):
		utc = true
		if !tbs.ReadASN1UTCTime(&t) {
			return "malformed " + field
		}
	case tbs.PeekASN1Tag(cbasn1.GeneralizedTime):
		if !tbs.ReadASN1GeneralizedTime(&t) {
			return "malformed " + field
		}
	default:
		return "no " + field
	}
	if utc != (t.Year() < 2050) {
		return field + " is not UTCTime through 2049 and GeneralizedTime from 2050"
	}
	return ""
}

// wantExtension is one extension Check expects, with a function that says
// how another value differs.
type wantExtension struct {
	id       asn1.ObjectIdentifier
	name     string
	critical bool
	value    []byte
	differs  func(got []byte) string
}

// checkListExtensions checks the CRL's extensions: authorityKeyIdentifier,
// cRLNumber, issuingDistributionPoint (critical), in that order, nothing
// else.
func checkListExtensions(rl *x509.RevocationList, req Request, pl *plan, fail func(kind, format string, args ...any)) {
	aki, _ := marshalAuthorityKeyID(req.Issuer.SubjectKeyId)
	number, _ := asn1.Marshal(req.Number)
	want := []wantExtension{
		{oidExtAuthorityKeyID, "authorityKeyIdentifier", false, aki, func([]byte) string {
			if !bytes.Equal(rl.AuthorityKeyId, req.Issuer.SubjectKeyId) {
				return "keyIdentifier is not the issuer's subjectKeyIdentifier"
			}
			return "has fields besides keyIdentifier"
		}},
		{oidExtCRLNumber, "cRLNumber", false, number, func([]byte) string {
			if rl.Number == nil {
				return "malformed"
			}
			return fmt.Sprintf("%v, want %v", rl.Number, req.Number)
		}},
		{oidExtIssuingDistributionPoint, "issuingDistributionPoint", true, pl.idp, func(got []byte) string {
			return idpDifference(got, req.Partition)
		}},
	}
	checkExtensions(rl.Extensions, want, func(format string, args ...any) { fail("extensions", format, args...) })
}

// checkExtensions compares got with want: each wanted extension once,
// with its criticality and value, nothing else, in want's order.
func checkExtensions(got []pkix.Extension, want []wantExtension, fail func(format string, args ...any)) {
	ok := len(got) == len(want)
	for _, w := range want {
		n := 0
		for _, g := range got {
			if !g.Id.Equal(w.id) {
				continue
			}
			if n++; n > 1 {
				continue
			}
			if g.Critical != w.critical {
				fail("%s is %s, want %s", w.name, criticality(g.Critical), criticality(w.critical))
				ok = false
			}
			if !bytes.Equal(g.Value, w.value) {
				fail("%s %s", w.name, w.differs(g.Value))
				ok = false
			}
		}
		switch {
		case n == 0:
			fail("no %s extension", w.name)
			ok = false
		case n > 1:
			fail("%d %s extensions", n, w.name)
			ok = false
		}
	}
	for _, g := range got {
		if !slices.ContainsFunc(want, func(w wantExtension) bool { return w.id.Equal(g.Id) }) {
			fail("unexpected extension %v (%s)", g.Id, criticality(g.Critical))
			ok = false
		}
	}
	if ok {
		for i := range want {
			if !got[i].Id.Equal(want[i].id) {
				fail("extensions out of order, want %s", names(want))
				return
			}
		}
	}
}

func criticality(critical bool) string {
	if critical {
		return "critical"
	}
	return "non-critical"
}

func names(want []wantExtension) string {
	out := make([]string, len(want))
	for i, w := range want {
		out[i] = w.name
	}
	return strings.Join(out, ", ")
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

// idpDifference says how an issuingDistributionPoint value differs from
// the one of partition p.
func idpDifference(got []byte, p Partition) string {
	in := cryptobyte.String(got)
	var idp, dpName, fullName cryptobyte.String
	var hasDP bool
	if !in.ReadASN1(&idp, cbasn1.SEQUENCE) || !in.Empty() || !idp.ReadOptionalASN1(&dpName, &hasDP, tagDistributionPoint) {
		return "malformed"
	}
	if !hasDP {
		return "names no distribution point; want the partition's fullName"
	}
	if !dpName.ReadASN1(&fullName, tagFullName) || !dpName.Empty() {
		return "distribution point is not a fullName"
	}
	var uri, dirName cryptobyte.String
	if !fullName.ReadASN1(&uri, tagURI) || !fullName.ReadASN1(&dirName, tagDirectoryName) || !fullName.Empty() {
		return "fullName is not the URI then the directoryName, the certificates' cRLDistributionPoints"
	}
	if string(uri) != p.URL {
		return fmt.Sprintf("names URI %q, want %q", uri, p.URL)
	}
	if want, _ := p.DistributionPoint.Marshal(); !bytes.Equal(dirName, want) {
		if d, err := dn.FromDER(dirName); err == nil {
			return fmt.Sprintf("names directoryName %s, want %s", d, p.DistributionPoint)
		}
		return fmt.Sprintf("names another directoryName, want %s", p.DistributionPoint)
	}
	var user cryptobyte.String
	if !idp.ReadASN1(&user, tagOnlyContainsUserCerts) || !bytes.Equal(user, []byte{0xff}) {
		return "lacks onlyContainsUserCerts TRUE"
	}
	if !idp.Empty() {
		return "has fields besides the distribution point and onlyContainsUserCerts"
	}
	return "differs in encoding"
}

// checkEntries compares the CRL's entries with the requested ones, order
// being req's indexes by ascending serial.
func checkEntries(got []x509.RevocationListEntry, want []Entry, order []int, fail func(kind, format string, args ...any)) {
	if len(got) != len(want) {
		fail("count", "%d entries, want %d", len(got), len(want))
	}
	sorted := true
	for i := 1; i < len(got); i++ {
		switch got[i].SerialNumber.Cmp(got[i-1].SerialNumber) {
		case 0:
			fail("duplicate", "serial %x is listed twice (entries %d and %d)", got[i].SerialNumber, i-1, i)
			sorted = false
		case -1:
			fail("order", "entry %d (serial %x) follows serial %x: entries must be in ascending serial order", i, got[i].SerialNumber, got[i-1].SerialNumber)
			sorted = false
		}
	}
	gotOrder := make([]int, len(got))
	for i := range gotOrder {
		gotOrder[i] = i
	}
	if !sorted {
		slices.SortFunc(gotOrder, func(a, b int) int { return got[a].SerialNumber.Cmp(got[b].SerialNumber) })
	}
	var buf []byte
	i, j := 0, 0
	for i < len(gotOrder) || j < len(order) {
		if i > 0 && i < len(gotOrder) && got[gotOrder[i]].SerialNumber.Cmp(got[gotOrder[i-1]].SerialNumber) == 0 {
			i++ // a duplicate, reported above
			continue
		}
		c := 0
		switch {
		case i == len(gotOrder):
			c = 1
		case j == len(order):
			c = -1
		default:
			c = got[gotOrder[i]].SerialNumber.Cmp(want[order[j]].Serial)
		}
		switch c {
		case -1:
			fail("extra", "serial %x is not in the request", got[gotOrder[i]].SerialNumber)
			i++
		case 1:
			fail("missing", "serial %x of the request is missing", want[order[j]].Serial)
			j++
		default:
			buf = checkEntry(&got[gotOrder[i]], &want[order[j]], buf, fail)
			i++
			j++
		}
	}
}

// checkEntry compares one entry; buf is scratch space, returned for reuse.
func checkEntry(got *x509.RevocationListEntry, want *Entry, buf []byte, fail func(kind, format string, args ...any)) []byte {
	sn := got.SerialNumber
	if wantTime := seconds(want.RevokedAt); !got.RevocationTime.Equal(wantTime) {
		fail("revocationDate", "serial %x: revocationDate %s, want %s", sn, got.RevocationTime.UTC().Format(time.RFC3339), wantTime.UTC().Format(time.RFC3339))
	}
	wantInvalidity, wantReason := !want.InvalidityDate.IsZero(), want.Reason != 0
	if wantInvalidity {
		buf = appendGeneralizedTime(buf[:0], want.InvalidityDate)
	}
	invalidity, reason := -1, -1
	for k, ext := range got.Extensions {
		switch {
		case ext.Id.Equal(oidExtInvalidityDate):
			if invalidity >= 0 {
				fail("invalidityDate", "serial %x: two invalidityDate extensions", sn)
				continue
			}
			invalidity = k
			if ext.Critical {
				fail("invalidityDate", "serial %x: invalidityDate is critical, want non-critical", sn)
			}
			switch {
			case !wantInvalidity:
				fail("invalidityDate", "serial %x: has an invalidityDate; the request has none", sn)
			case !bytes.Equal(ext.Value, buf):
				fail("invalidityDate", "serial %x: invalidityDate %s", sn, invalidityDifference(ext.Value, want.InvalidityDate))
			}
		case ext.Id.Equal(oidExtReasonCode):
			if reason >= 0 {
				fail("reasonCode", "serial %x: two reasonCode extensions", sn)
				continue
			}
			reason = k
			if ext.Critical {
				fail("reasonCode", "serial %x: reasonCode is critical, want non-critical", sn)
			}
			switch {
			case !wantReason:
				fail("reasonCode", "serial %x: has reasonCode %d; reason 0 (unspecified) is written as no reasonCode (RFC 5280 §5.3.1)", sn, got.ReasonCode)
			case got.ReasonCode != want.Reason:
				fail("reasonCode", "serial %x: reasonCode %d, want %d (%s)", sn, got.ReasonCode, want.Reason, allowedReasons[want.Reason])
			case !bytes.Equal(ext.Value, []byte{byte(cbasn1.ENUM), 1, byte(want.Reason)}):
				fail("reasonCode", "serial %x: reasonCode is not DER", sn)
			}
		default:
			fail("entryExtension", "serial %x: unexpected extension %v", sn, ext.Id)
		}
	}
	if wantInvalidity && invalidity < 0 {
		fail("invalidityDate", "serial %x: no invalidityDate", sn)
	}
	if wantReason && reason < 0 {
		fail("reasonCode", "serial %x: no reasonCode, want %d (%s)", sn, want.Reason, allowedReasons[want.Reason])
	}
	if invalidity >= 0 && reason >= 0 && reason < invalidity {
		fail("entryExtension", "serial %x: reasonCode before invalidityDate", sn)
	}
	return buf
}

// invalidityDifference says how an invalidityDate value differs from want.
func invalidityDifference(got []byte, want time.Time) string {
	in := cryptobyte.String(got)
	var t time.Time
	if !in.ReadASN1GeneralizedTime(&t) || !in.Empty() {
		return "is not a DER GeneralizedTime (RFC 5280 §5.3.2)"
	}
	return fmt.Sprintf("%s, want %s", t.UTC().Format(time.RFC3339), seconds(want).UTC().Format(time.RFC3339))
}
