package crl

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"iter"
	"math/big"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// Check verifies that der is exactly the CRL Build promises for req: a v2
// CRL, nothing after it, signed by req.Issuer's key with the algorithm of
// its type; issuer name the bytes of req.Issuer.RawSubject; thisUpdate and
// nextUpdate as requested (to the second, UTCTime through 2049); exactly
// the extensions authorityKeyIdentifier, cRLNumber and a critical
// issuingDistributionPoint, in that order, each byte for byte; and the
// requested entries, sorted by ascending serial with no duplicates, each
// with its revocationDate (UTCTime through 2049) and exactly its
// invalidityDate (GeneralizedTime) and reasonCode (absent for 0)
// extensions, non-critical, in that order.
//
// It reads der with cryptobyte in place, as strictly as Go's x509 parser
// and more (DER times, serials, the field types RFC 5280 asks for), and
// allocates little beyond the request's sorted serials: a CRL of a
// million entries is not turned into a million big.Ints and extension
// slices. A CRL it cannot read at all is also given to
// x509.ParseRevocationList, to say whether relying parties could.
//
// It does not use req.Signer. A bad request gives Build's errors
// (ErrInvalidRequest); every difference is a *MismatchError wrapping
// ErrMismatch, all joined (at most ten of a kind, then a count).
func Check(der []byte, req Request) error {
	pl, err := prepare(req, false)
	if err != nil {
		return err
	}
	return check(der, req, pl)
}

// check is Check of a prepared request.
func check(der []byte, req Request, pl *plan) error {
	var ps problems
	fail := func(kind, format string, args ...any) {
		ps.add(kind, &MismatchError{req.Partition.Name, fmt.Sprintf(format, args...)})
	}
	v, why := readCRL(der, fail)
	if why != "" {
		return &MismatchError{req.Partition.Name, unreadable(der, why)}
	}
	checkSignature(v, req.Issuer, pl.sigAlg, fail)
	if !bytes.Equal(v.issuer, req.Issuer.RawSubject) {
		fail("issuer", "issuer name is not the issuer certificate's subject")
	}
	if !v.thisUpdate.Equal(pl.thisUpdate) {
		fail("thisUpdate", "thisUpdate %s, want %s", v.thisUpdate.Format(time.RFC3339), pl.thisUpdate.UTC().Format(time.RFC3339))
	}
	if v.hasNextUpdate && !v.nextUpdate.Equal(pl.nextUpdate) {
		fail("nextUpdate", "nextUpdate %s, want %s", v.nextUpdate.Format(time.RFC3339), pl.nextUpdate.UTC().Format(time.RFC3339))
	}
	checkListExtensions(v.extensions, req, pl, fail)
	checkEntries(v.revoked, req.Entries, pl.sorted, fail)
	return ps.err(func(p string) error { return &MismatchError{req.Partition.Name, p} })
}

// crlView is a CRL as readCRL finds it: slices of the DER, nothing copied
// but the CRL's own three extensions.
type crlView struct {
	tbs                    []byte // the TBSCertList, tag and length included: what is signed
	innerAlg, outerAlg     []byte // the TBSCertList's signature field and the signatureAlgorithm
	signature              []byte
	issuer                 []byte // the Name, tag and length included
	thisUpdate, nextUpdate time.Time
	hasNextUpdate          bool
	revoked                cryptobyte.String // the contents of revokedCertificates
	extensions             []pkix.Extension
}

// readCRL reads der as a CertificateList. What Go's parser lets through
// but Build never writes (data after the CRL or inside it after the last
// field, a version other than v2, a missing nextUpdate, a time of the
// wrong type, an empty revokedCertificates, no crlExtensions) is reported
// through fail; a CRL whose fields cannot be found at all gives why.
func readCRL(der []byte, fail func(kind, format string, args ...any)) (v *crlView, why string) {
	v = &crlView{}
	in := cryptobyte.String(der)
	var list, tbsElement, tbs, outerAlg cryptobyte.String
	var sig asn1.BitString
	if !in.ReadASN1(&list, cbasn1.SEQUENCE) {
		return nil, "not a DER SEQUENCE"
	}
	if !in.Empty() {
		fail("trailing", "%d bytes after the CRL", len(in))
	}
	if !list.ReadASN1Element(&tbsElement, cbasn1.SEQUENCE) || !list.ReadASN1Element(&outerAlg, cbasn1.SEQUENCE) || !list.ReadASN1BitString(&sig) {
		return nil, "malformed CertificateList"
	}
	if !list.Empty() {
		fail("shape", "CertificateList has data after the signature")
	}
	v.tbs, v.outerAlg = tbsElement, outerAlg
	if sig.BitLength%8 != 0 {
		fail("signature", "the signature is not a whole number of octets")
	}
	v.signature = sig.Bytes

	var version, innerAlg, issuer cryptobyte.String
	tbs = tbsElement
	if !tbs.ReadASN1(&tbs, cbasn1.SEQUENCE) || !tbs.ReadASN1(&version, cbasn1.INTEGER) ||
		!tbs.ReadASN1Element(&innerAlg, cbasn1.SEQUENCE) || !tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) {
		return nil, "malformed TBSCertList"
	}
	if !bytes.Equal(version, []byte{1}) {
		fail("shape", "version is not v2")
	}
	v.innerAlg, v.issuer = innerAlg, issuer

	var present, ok bool
	var utc bool
	if v.thisUpdate, utc, present, ok = x509enc.ReadTime(&tbs); !present || !ok {
		return nil, "malformed thisUpdate"
	}
	if utc != x509enc.IsUTCTime(v.thisUpdate) {
		fail("shape", "thisUpdate is not UTCTime through 2049 and GeneralizedTime from 2050")
	}
	if v.nextUpdate, utc, v.hasNextUpdate, ok = x509enc.ReadTime(&tbs); !ok {
		return nil, "malformed nextUpdate"
	}
	if !v.hasNextUpdate {
		fail("shape", "no nextUpdate")
	} else if utc != x509enc.IsUTCTime(v.nextUpdate) {
		fail("shape", "nextUpdate is not UTCTime through 2049 and GeneralizedTime from 2050")
	}

	if !tbs.ReadOptionalASN1(&v.revoked, &present, cbasn1.SEQUENCE) {
		return nil, "malformed revokedCertificates"
	}
	if present && v.revoked.Empty() {
		fail("shape", "revokedCertificates is present but empty; a CRL with no entries omits it (RFC 5280 §5.1.2.6)")
	}
	// Each entry is a SEQUENCE starting with an INTEGER: checkEntries
	// walks them without checking that again.
	for entries, i := v.revoked, 0; !entries.Empty(); i++ {
		var entry cryptobyte.String
		if !entries.ReadASN1(&entry, cbasn1.SEQUENCE) || !entry.SkipASN1(cbasn1.INTEGER) {
			return nil, fmt.Sprintf("malformed revokedCertificates entry %d", i)
		}
	}

	var exts cryptobyte.String
	if !tbs.ReadOptionalASN1(&exts, &present, cbasn1.Tag(0).ContextSpecific().Constructed()) ||
		present && (!exts.ReadASN1(&exts, cbasn1.SEQUENCE) || exts.Empty()) {
		return nil, "malformed crlExtensions"
	}
	if !present {
		fail("shape", "no crlExtensions")
	}
	for !exts.Empty() {
		var e pkix.Extension
		var oid, value cryptobyte.String
		if !readExtension(&exts, &oid, &e.Critical, &value) {
			return nil, "malformed crlExtensions"
		}
		if err := asn1Unmarshal(oid, &e.Id); err != nil {
			return nil, "malformed crlExtensions"
		}
		e.Value = value
		v.extensions = append(v.extensions, e)
	}
	if !tbs.Empty() {
		fail("shape", "TBSCertList has data after crlExtensions")
	}
	return v, ""
}

// unreadable is the problem of a CRL readCRL cannot read: whether Go's
// parser can (it costs what Check otherwise saves, but only for a CRL that
// is broken anyway).
func unreadable(der []byte, why string) string {
	if _, err := x509.ParseRevocationList(der); err != nil {
		return fmt.Sprintf("not a CRL Go can parse: %v", err)
	}
	return "not a CRL as RFC 5280 writes it, though Go's parser reads it: " + why
}

// readExtension reads Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER,
// critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }, the OID whole
// (tag and length included).
func readExtension(s *cryptobyte.String, oid *cryptobyte.String, critical *bool, value *cryptobyte.String) bool {
	var ext cryptobyte.String
	if !s.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1Element(oid, cbasn1.OBJECT_IDENTIFIER) {
		return false
	}
	*critical = false
	if ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(critical) {
		return false
	}
	return ext.ReadASN1(value, cbasn1.OCTET_STRING) && ext.Empty()
}

// asn1Unmarshal decodes the whole of der into out.
func asn1Unmarshal(der []byte, out any) error {
	rest, err := asn1.Unmarshal(der, out)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes after the value", len(rest))
	}
	return err
}

// checkSignature checks the signature algorithm and the signature.
func checkSignature(v *crlView, issuer *x509.Certificate, want x509.SignatureAlgorithm, fail func(kind, format string, args ...any)) {
	if !bytes.Equal(v.innerAlg, v.outerAlg) {
		fail("signature", "the TBSCertList's signature algorithm is not the CertificateList's")
	}
	alg := x509enc.AlgorithmOf(v.outerAlg)
	if alg != want {
		name := alg.String()
		if alg == x509.UnknownSignatureAlgorithm {
			name = fmt.Sprintf("%x", v.outerAlg)
		}
		fail("signature", "signature algorithm %s, want %v for the issuer's key", name, want)
	}
	// As RevocationList.CheckSignatureFrom: the issuer must be a CA.
	if issuer.Version == 3 && !issuer.BasicConstraintsValid || issuer.BasicConstraintsValid && !issuer.IsCA {
		fail("signature", "the issuer certificate is not a CA certificate")
	}
	if err := issuer.CheckSignature(alg, v.tbs, v.signature); err != nil {
		fail("signature", "signature does not verify with the issuer's key: %v", err)
	}
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
// else. The expected values are encoded here with encoding/asn1, not with
// Build's encoder.
func checkListExtensions(got []pkix.Extension, req Request, pl *plan, fail func(kind, format string, args ...any)) {
	aki, _ := asn1.Marshal(struct {
		ID []byte `asn1:"optional,tag:0"`
	}{req.Issuer.SubjectKeyId})
	number, _ := asn1.Marshal(req.Number)
	want := []wantExtension{
		{oidExtAuthorityKeyID, "authorityKeyIdentifier", false, aki, func(got []byte) string {
			in := cryptobyte.String(got)
			var seq, keyID cryptobyte.String
			if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&keyID, cbasn1.Tag(0).ContextSpecific()) || !bytes.Equal(keyID, req.Issuer.SubjectKeyId) {
				return "keyIdentifier is not the issuer's subjectKeyIdentifier"
			}
			return "has fields besides keyIdentifier"
		}},
		{oidExtCRLNumber, "cRLNumber", false, number, func(got []byte) string {
			in := cryptobyte.String(got)
			n := new(big.Int)
			if !in.ReadASN1Integer(n) || !in.Empty() {
				return "malformed"
			}
			return fmt.Sprintf("%v, want %v", n, req.Number)
		}},
		{oidExtIssuingDistributionPoint, "issuingDistributionPoint", true, pl.idp, func(got []byte) string {
			return idpDifference(got, req.Partition)
		}},
	}
	checkExtensions(got, want, func(format string, args ...any) { fail("extensions", format, args...) })
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

// idpDifference says how an issuingDistributionPoint value differs from
// the one of partition p.
func idpDifference(got []byte, p Partition) string {
	uri, dirName, err := x509enc.ParseIssuingDistributionPoint(got)
	switch {
	case errors.Is(err, x509enc.ErrDPNoName):
		return "names no distribution point; want the partition's fullName"
	case errors.Is(err, x509enc.ErrDPNames):
		return "fullName is not the URI then the directoryName, the certificates' cRLDistributionPoints"
	case errors.Is(err, x509enc.ErrIDPNotUserCerts), errors.Is(err, x509enc.ErrIDPMoreFields):
		// The names first: they say more than the flag.
	case err != nil:
		return err.Error()
	}
	if uri != p.URL {
		return fmt.Sprintf("names URI %q, want %q", uri, p.URL)
	}
	if want, _ := p.DistributionPoint.Marshal(); !bytes.Equal(dirName, want) {
		if d, err := x509enc.DNFromDER(dirName); err == nil {
			return fmt.Sprintf("names directoryName %s, want %s", d, p.DistributionPoint)
		}
		return fmt.Sprintf("names another directoryName, want %s", p.DistributionPoint)
	}
	if err != nil {
		return err.Error()
	}
	return "differs in encoding"
}

// gotEntry is one revokedCertificates entry as Check reads it.
type gotEntry struct {
	pos    int               // its position on the CRL, from 0
	serial []byte            // the INTEGER's contents
	key    serialNumber      // the serial, when valid
	valid  bool              // the serial is a positive DER INTEGER of at most 20 octets
	body   cryptobyte.String // revocationDate and crlEntryExtensions
}

// entriesOf yields the entries of revokedCertificates contents that
// readCRL walked: each a SEQUENCE starting with an INTEGER.
func entriesOf(revoked cryptobyte.String) iter.Seq[gotEntry] {
	return func(yield func(gotEntry) bool) {
		in := revoked
		for pos := 0; !in.Empty(); pos++ {
			var entry, serial cryptobyte.String
			in.ReadASN1(&entry, cbasn1.SEQUENCE)
			entry.ReadASN1(&serial, cbasn1.INTEGER)
			e := gotEntry{pos: pos, serial: serial, body: entry}
			e.key, e.valid = keyOf(serial)
			if !yield(e) {
				return
			}
		}
	}
}

// keyOf is the sort key of the contents of an INTEGER, if it is a
// positive DER INTEGER of at most 20 octets (RFC 5280 §4.1.2.2).
func keyOf(n []byte) (k serialNumber, ok bool) {
	switch {
	case len(n) == 0 || n[0]&0x80 != 0: // empty or negative
		return k, false
	case n[0] == 0 && (len(n) == 1 || n[1]&0x80 == 0): // zero, or not minimal
		return k, false
	case n[0] == 0:
		n = n[1:]
	}
	if len(n) > len(k) {
		return k, false
	}
	copy(k[len(k)-len(n):], n)
	return k, true
}

// checkEntries compares the CRL's entries with the requested ones, sorted
// being req's by ascending serial, without keeping the entries. Entries in
// ascending order, as Build writes them, are checked in one walk, their
// order and contents together (checkEntriesInOrder). A CRL whose entries
// are out of order is walked again: once for the serials and their order,
// then with the entries collected and sorted, for their contents.
func checkEntries(revoked cryptobyte.String, want []Entry, sorted []sortKey, fail func(kind, format string, args ...any)) {
	var found []func()
	inOrder := checkEntriesInOrder(revoked, want, sorted, func(kind, format string, args ...any) {
		found = append(found, func() { fail(kind, format, args...) })
	})
	if inOrder {
		for _, f := range found {
			f()
		}
		return
	}

	count := 0
	var prev gotEntry
	for e := range entriesOf(revoked) {
		count++
		if !e.valid {
			fail("serial", "entry %d: serial %x is not a positive DER INTEGER of at most 20 octets", e.pos, e.serial)
			continue
		}
		if prev.valid {
			switch compareSerials(&e.key, &prev.key) {
			case 0:
				fail("duplicate", "serial %x is listed twice (entries %d and %d)", e.key, prev.pos, e.pos)
			case -1:
				fail("order", "entry %d (serial %x) follows serial %x: entries must be in ascending serial order", e.pos, e.key, prev.key)
			}
		}
		prev = e
	}
	if count != len(want) {
		fail("count", "%d entries, want %d", count, len(want))
	}
	var all []gotEntry
	for e := range entriesOf(revoked) {
		if e.valid {
			all = append(all, e)
		}
	}
	slices.SortStableFunc(all, func(a, b gotEntry) int { return compareSerials(&a.key, &b.key) })
	compareEntries(slices.Values(all), want, sorted, fail)
}

// checkEntriesInOrder checks the entries in one walk, as long as they are
// in ascending serial order: each serial valid and listed once, the count,
// and each entry against the request. It returns false, having reported
// nothing it would not report again, as soon as an entry is out of order.
func checkEntriesInOrder(revoked cryptobyte.String, want []Entry, sorted []sortKey, fail func(kind, format string, args ...any)) bool {
	count, inOrder := 0, true
	var prev gotEntry
	got := func(yield func(gotEntry) bool) {
		for e := range entriesOf(revoked) {
			count++
			if !e.valid {
				fail("serial", "entry %d: serial %x is not a positive DER INTEGER of at most 20 octets", e.pos, e.serial)
				continue
			}
			if prev.valid {
				switch compareSerials(&e.key, &prev.key) {
				case 0:
					fail("duplicate", "serial %x is listed twice (entries %d and %d)", e.key, prev.pos, e.pos)
				case -1:
					inOrder = false
					return
				}
			}
			prev = e
			if !yield(e) {
				return
			}
		}
	}
	compareEntries(got, want, sorted, fail)
	if inOrder && count != len(want) {
		fail("count", "%d entries, want %d", count, len(want))
	}
	return inOrder
}

// compareEntries merges got, valid entries by ascending serial, with
// sorted, the request's: each entry of both is compared, an entry of
// either alone is extra or missing. A serial given twice in a row is
// compared once (its duplicate is reported by the caller).
func compareEntries(got iter.Seq[gotEntry], want []Entry, sorted []sortKey, fail func(kind, format string, args ...any)) {
	var buf []byte
	j, first := 0, true
	var last serialNumber
	for e := range got {
		if !first && e.key == last {
			continue // a duplicate, reported by the caller
		}
		first, last = false, e.key
		for ; j < len(sorted) && compareSerials(&sorted[j].serial, &e.key) < 0; j++ {
			fail("missing", "serial %x of the request is missing", want[sorted[j].index].Serial)
		}
		if j < len(sorted) && sorted[j].serial == e.key {
			buf = checkEntry(e, &want[sorted[j].index], buf, fail)
			j++
		} else {
			fail("extra", "serial %x is not in the request", e.key)
		}
	}
	for ; j < len(sorted); j++ {
		fail("missing", "serial %x of the request is missing", want[sorted[j].index].Serial)
	}
}

// The entry extensions' OIDs, tag and length included.
var (
	oidInvalidityDateDER = []byte{byte(cbasn1.OBJECT_IDENTIFIER), 3, 0x55, 0x1d, 0x18} // 2.5.29.24
	oidReasonCodeDER     = []byte{byte(cbasn1.OBJECT_IDENTIFIER), 3, 0x55, 0x1d, 0x15} // 2.5.29.21
)

// checkEntry compares one entry; buf is scratch space, returned for reuse.
func checkEntry(got gotEntry, want *Entry, buf []byte, fail func(kind, format string, args ...any)) []byte {
	sn, body := got.key, got.body
	revokedAt, utc, present, ok := x509enc.ReadTime(&body)
	var exts cryptobyte.String
	var hasExts bool
	if !present || !ok || !body.ReadOptionalASN1(&exts, &hasExts, cbasn1.SEQUENCE) || !body.Empty() {
		fail("entry", "serial %x: malformed entry (a revocationDate and crlEntryExtensions, nothing else)", sn)
		return buf
	}
	if utc != x509enc.IsUTCTime(revokedAt) {
		fail("revocationDate", "serial %x: revocationDate is not UTCTime through 2049 and GeneralizedTime from 2050", sn)
	}
	if wantTime := seconds(want.RevokedAt); !revokedAt.Equal(wantTime) {
		fail("revocationDate", "serial %x: revocationDate %s, want %s", sn, revokedAt.Format(time.RFC3339), wantTime.UTC().Format(time.RFC3339))
	}
	if hasExts && exts.Empty() {
		fail("entryExtension", "serial %x: crlEntryExtensions is present but empty", sn)
	}
	wantInvalidity, wantReason := !want.InvalidityDate.IsZero(), want.Reason != 0
	if wantInvalidity {
		buf = x509enc.AppendGeneralizedTime(buf[:0], want.InvalidityDate)
	}
	invalidity, reason := -1, -1
	for k := 0; !exts.Empty(); k++ {
		var oid, value cryptobyte.String
		var critical bool
		if !readExtension(&exts, &oid, &critical, &value) {
			fail("entryExtension", "serial %x: malformed crlEntryExtensions", sn)
			break
		}
		switch {
		case bytes.Equal(oid, oidInvalidityDateDER):
			if invalidity >= 0 {
				fail("invalidityDate", "serial %x: two invalidityDate extensions", sn)
				continue
			}
			invalidity = k
			if critical {
				fail("invalidityDate", "serial %x: invalidityDate is critical, want non-critical", sn)
			}
			switch {
			case !wantInvalidity:
				fail("invalidityDate", "serial %x: has an invalidityDate; the request has none", sn)
			case !bytes.Equal(value, buf):
				fail("invalidityDate", "serial %x: invalidityDate %s", sn, invalidityDifference(value, want.InvalidityDate))
			}
		case bytes.Equal(oid, oidReasonCodeDER):
			if reason >= 0 {
				fail("reasonCode", "serial %x: two reasonCode extensions", sn)
				continue
			}
			reason = k
			if critical {
				fail("reasonCode", "serial %x: reasonCode is critical, want non-critical", sn)
			}
			in, code := cryptobyte.String(value), 0
			switch {
			case !in.ReadASN1Enum(&code) || !in.Empty():
				fail("reasonCode", "serial %x: reasonCode is not a DER ENUMERATED", sn)
			case !wantReason:
				fail("reasonCode", "serial %x: has reasonCode %d; reason 0 (unspecified) is written as no reasonCode (RFC 5280 §5.3.1)", sn, code)
			case code != want.Reason:
				fail("reasonCode", "serial %x: reasonCode %d, want %d (%s)", sn, code, want.Reason, x509enc.ReasonName(want.Reason))
			case !bytes.Equal(value, []byte{byte(cbasn1.ENUM), 1, byte(want.Reason)}):
				fail("reasonCode", "serial %x: reasonCode is not DER", sn)
			}
		default:
			var id asn1.ObjectIdentifier
			if err := asn1Unmarshal(oid, &id); err != nil {
				fail("entryExtension", "serial %x: unexpected extension with a malformed OID", sn)
				continue
			}
			fail("entryExtension", "serial %x: unexpected extension %v", sn, id)
		}
	}
	if wantInvalidity && invalidity < 0 {
		fail("invalidityDate", "serial %x: no invalidityDate", sn)
	}
	if wantReason && reason < 0 {
		fail("reasonCode", "serial %x: no reasonCode, want %d (%s)", sn, want.Reason, x509enc.ReasonName(want.Reason))
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
