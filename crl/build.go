package crl

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/ca/profile"
)

// Entry is one revoked certificate on a CRL.
type Entry struct {
	Serial *big.Int
	// RevokedAt is the revocationDate: when the CA recorded the revocation
	// (R-R3). Not after the CRL's ThisUpdate.
	RevokedAt time.Time
	// Reason is the RFC 5280 CRLReason code: 0 unspecified, 1
	// keyCompromise, 2 cACompromise, 3 affiliationChanged, 4 superseded,
	// 5 cessationOfOperation or 9 privilegeWithdrawn. 0 is written as no
	// reasonCode extension (RFC 5280 §5.3.1: the extension SHOULD be
	// absent rather than unspecified).
	Reason int
	// InvalidityDate is the event's effective time (R-R3), written as the
	// invalidityDate extension. Zero: no invalidityDate.
	InvalidityDate time.Time
}

// Request is one CRL of one partition.
type Request struct {
	Partition Partition
	// Issuer is the certificate of the issuer key generation the partition
	// belongs to. It must have a subjectKeyIdentifier and the cRLSign key
	// usage.
	Issuer *x509.Certificate
	// Signer is the issuer's key (in the HSM in production). Build only;
	// Check ignores it.
	Signer crypto.Signer
	// Number is the cRLNumber, monotonic per partition; the caller keeps it.
	Number *big.Int
	// ThisUpdate and NextUpdate bound the CRL's validity (R-R5: 24 h by
	// default; the caller decides).
	ThisUpdate, NextUpdate time.Time
	// Entries are the partition's revoked, unexpired certificates, in any
	// order, each serial once.
	Entries []Entry
}

// allowedReasons are the CRLReason codes an entry may carry (RFC 5280
// §5.3.1). Refused: 6 certificateHold (revocation is permanent, R-R2),
// 7 (unassigned), 8 removeFromCRL (for delta CRLs; Shomei publishes full
// CRLs only) and 10 aACompromise (attribute certificates; these CRLs
// cover end-entity public-key certificates).
var allowedReasons = map[int]string{
	0: "unspecified",
	1: "keyCompromise",
	2: "cACompromise",
	3: "affiliationChanged",
	4: "superseded",
	5: "cessationOfOperation",
	9: "privilegeWithdrawn",
}

var (
	oidExtReasonCode     = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidExtInvalidityDate = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidExtAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidExtCRLNumber      = asn1.ObjectIdentifier{2, 5, 29, 20}
)

// Build returns the DER X.509 v2 CRL of req, signed by req.Signer: the
// issuer name is req.Issuer.RawSubject, the extensions are
// authorityKeyIdentifier (the issuer's subjectKeyIdentifier), cRLNumber and
// a critical issuingDistributionPoint naming the partition exactly as its
// certificates do, with onlyContainsUserCerts; the entries are sorted by
// serial, each with invalidityDate when set and reasonCode unless the
// reason is 0. Times are written to the second, rounded down.
//
// A bad request gives *FieldError values wrapping ErrInvalidRequest, all
// at once (at most ten of a kind, then a count). The caller runs Check on
// the result before publishing it.
func Build(req Request) ([]byte, error) {
	pl, err := prepare(req, true)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.RevocationList{
		SignatureAlgorithm:        pl.sigAlg,
		Number:                    req.Number,
		ThisUpdate:                pl.thisUpdate,
		NextUpdate:                pl.nextUpdate,
		RevokedCertificateEntries: revokedEntries(req.Entries, pl.order),
		ExtraExtensions:           []pkix.Extension{{Id: oidExtIssuingDistributionPoint, Critical: true, Value: pl.idp}},
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, req.Issuer, req.Signer)
	if err != nil {
		return nil, fmt.Errorf("crl: partition %s: %w", req.Partition.Name, err)
	}
	return der, nil
}

// revokedEntries converts entries, in order, to x509's. The invalidityDate
// extensions share one backing array each for the extensions and their
// values: three allocations instead of three per entry.
//
// x509.CreateRevocationList writes the reasonCode itself from ReasonCode,
// omitting it for 0, and appends it after ExtraExtensions, so an entry's
// extensions are invalidityDate then reasonCode (Go 1.26
// crypto/x509.CreateRevocationList).
func revokedEntries(entries []Entry, order []int) []x509.RevocationListEntry {
	n := 0
	for _, e := range entries {
		if !e.InvalidityDate.IsZero() {
			n++
		}
	}
	exts := make([]pkix.Extension, 0, n)
	values := make([]byte, 0, n*generalizedTimeLen)
	out := make([]x509.RevocationListEntry, len(order))
	for i, j := range order {
		e := &entries[j]
		out[i] = x509.RevocationListEntry{SerialNumber: e.Serial, RevocationTime: seconds(e.RevokedAt), ReasonCode: e.Reason}
		if !e.InvalidityDate.IsZero() {
			start := len(values)
			values = appendGeneralizedTime(values, e.InvalidityDate)
			exts = append(exts, pkix.Extension{Id: oidExtInvalidityDate, Value: values[start:len(values):len(values)]})
			out[i].ExtraExtensions = exts[len(exts)-1 : len(exts) : len(exts)]
		}
	}
	return out
}

// generalizedTimeLen is the length of a DER GeneralizedTime
// YYYYMMDDHHMMSSZ with its tag and length.
const generalizedTimeLen = 2 + 15

// appendGeneralizedTime appends the DER GeneralizedTime of t to the
// second, in UTC, without fractional seconds (RFC 5280 §4.1.2.5.2; the
// invalidityDate is always a GeneralizedTime, §5.3.2). t's year must be
// 1950 to 9999 (prepare checks).
func appendGeneralizedTime(b []byte, t time.Time) []byte {
	b = append(b, byte(cbasn1.GeneralizedTime), 15)
	return seconds(t).UTC().AppendFormat(b, "20060102150405Z")
}

// seconds is t rounded down to the second: X.509 times keep whole seconds.
func seconds(t time.Time) time.Time { return t.Truncate(time.Second) }

// plan is what prepare works out from a valid request.
type plan struct {
	sigAlg                 x509.SignatureAlgorithm
	idp                    []byte // issuingDistributionPoint value
	thisUpdate, nextUpdate time.Time
	order                  []int // indexes of req.Entries by ascending serial
}

// prepare validates req (with its Signer when forBuild) and works out the
// plan. Errors are *FieldError values wrapping ErrInvalidRequest.
func prepare(req Request, forBuild bool) (*plan, error) {
	var ps problems
	fail := func(field, format string, args ...any) {
		ps.add(kindOf(field), &FieldError{field, fmt.Sprintf(format, args...)})
	}
	pl := &plan{thisUpdate: seconds(req.ThisUpdate), nextUpdate: seconds(req.NextUpdate)}

	req.Partition.validate("Request.Partition", fail)
	validateIssuer(req, forBuild, pl, fail)
	switch n := req.Number; {
	case n == nil:
		fail("Request.Number", "required")
	case n.Sign() < 0:
		fail("Request.Number", "negative; cRLNumber is 0 or more (RFC 5280 §5.2.3)")
	case n.BitLen() > 159:
		fail("Request.Number", "%d bits encode to more than 20 octets (RFC 5280 §5.2.3)", n.BitLen())
	}
	validateTime("Request.ThisUpdate", req.ThisUpdate, fail)
	validateTime("Request.NextUpdate", req.NextUpdate, fail)
	if !req.ThisUpdate.IsZero() && !req.NextUpdate.IsZero() && !pl.nextUpdate.After(pl.thisUpdate) {
		fail("Request.NextUpdate", "not after ThisUpdate (to the second)")
	}
	serialsOK := validateEntries(req, pl.thisUpdate, fail)
	if serialsOK {
		pl.order = sortedOrder(req.Entries)
		for i := 1; i < len(pl.order); i++ {
			a, b := min(pl.order[i-1], pl.order[i]), max(pl.order[i-1], pl.order[i])
			if req.Entries[a].Serial.Cmp(req.Entries[b].Serial) == 0 {
				fail(fmt.Sprintf("Request.Entries[%d].Serial", b), "%x is also Entries[%d]; each certificate is listed once", req.Entries[b].Serial, a)
			}
		}
	}
	if err := ps.err(func(p string) error { return &FieldError{"Request", p} }); err != nil {
		return nil, err
	}
	idp, err := req.Partition.marshalIssuingDistributionPoint()
	if err != nil {
		return nil, &FieldError{"Request.Partition", err.Error()}
	}
	pl.idp = idp
	return pl, nil
}

// kindOf groups the fields of entries for maxProblems:
// "Request.Entries[7].Reason" is of kind "Request.Entries[].Reason".
func kindOf(field string) string {
	const prefix = "Request.Entries["
	rest, ok := strings.CutPrefix(field, prefix)
	if i := strings.IndexByte(rest, ']'); ok && i >= 0 {
		return prefix + rest[i:]
	}
	return field
}

func validateIssuer(req Request, forBuild bool, pl *plan, fail func(field, format string, args ...any)) {
	iss := req.Issuer
	if iss == nil {
		fail("Request.Issuer", "required")
		return
	}
	if len(iss.RawSubject) == 0 {
		fail("Request.Issuer", "no subject name")
	}
	if len(iss.SubjectKeyId) == 0 {
		fail("Request.Issuer", "no subjectKeyIdentifier, needed for the authorityKeyIdentifier")
	}
	if iss.KeyUsage&x509.KeyUsageCRLSign == 0 {
		fail("Request.Issuer", "no cRLSign key usage")
	}
	alg, err := profile.SignatureAlgorithm(iss.PublicKey)
	if err != nil {
		fail("Request.Issuer", "%v", err)
	}
	pl.sigAlg = alg
	if !forBuild {
		return
	}
	if req.Signer == nil {
		fail("Request.Signer", "required")
		return
	}
	pub, ok := req.Signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(iss.PublicKey) {
		fail("Request.Signer", "its public key is not the issuer certificate's")
	}
}

// validateTime checks that t is set and its year can be written as X.509
// times are (UTCTime 1950-2049, GeneralizedTime after).
func validateTime(field string, t time.Time, fail func(field, format string, args ...any)) {
	if t.IsZero() {
		fail(field, "required")
	} else if y := t.UTC().Year(); y < 1950 || y > 9999 {
		fail(field, "year %d is outside 1950-9999", y)
	}
}

// validateEntries checks each entry and reports whether every serial is
// valid, so that the entries can be sorted.
func validateEntries(req Request, thisUpdate time.Time, fail func(field, format string, args ...any)) bool {
	serialsOK := true
	for i, e := range req.Entries {
		// The field name is made only for a problem: there may be a
		// million entries.
		failEntry := func(field, format string, args ...any) {
			fail(fmt.Sprintf("Request.Entries[%d].%s", i, field), format, args...)
		}
		switch n := e.Serial; {
		case n == nil:
			failEntry("Serial", "required")
			serialsOK = false
		case n.Sign() <= 0:
			failEntry("Serial", "must be positive")
			serialsOK = false
		case n.BitLen() > 159:
			failEntry("Serial", "%d bits encode to more than 20 octets", n.BitLen())
			serialsOK = false
		}
		validateTime("RevokedAt", e.RevokedAt, failEntry)
		if !e.RevokedAt.IsZero() && !thisUpdate.IsZero() && seconds(e.RevokedAt).After(thisUpdate) {
			failEntry("RevokedAt", "after the CRL's ThisUpdate")
		}
		if _, ok := allowedReasons[e.Reason]; !ok {
			failEntry("Reason", "%d is not a reason code of these CRLs: %s", e.Reason, reasonRule(e.Reason))
		}
		if !e.InvalidityDate.IsZero() {
			validateTime("InvalidityDate", e.InvalidityDate, failEntry)
		}
	}
	return serialsOK
}

// reasonRule says why an RFC 5280 reason code is refused.
func reasonRule(code int) string {
	switch code {
	case 6:
		return "certificateHold, but revocation is permanent (R-R2)"
	case 8:
		return "removeFromCRL belongs to delta CRLs"
	case 10:
		return "aACompromise concerns attribute certificates"
	}
	return "not a CRLReason of RFC 5280 §5.3.1"
}

// sortedOrder returns the indexes of entries by ascending serial. The
// serials must be positive and at most 20 octets (validateEntries): they
// are sorted as fixed-width big-endian keys, which compare like the
// numbers without following three pointers per comparison (a third of
// Build's own time at a million entries otherwise).
func sortedOrder(entries []Entry) []int {
	type key struct {
		serial [20]byte
		index  int
	}
	keys := make([]key, len(entries))
	for i, e := range entries {
		e.Serial.FillBytes(keys[i].serial[:])
		keys[i].index = i
	}
	slices.SortFunc(keys, func(a, b key) int { return bytes.Compare(a.serial[:], b.serial[:]) })
	order := make([]int, len(keys))
	for i, k := range keys {
		order[i] = k.index
	}
	return order
}
