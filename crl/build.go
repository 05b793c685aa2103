package crl

import (
	"cmp"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// Entry is one revoked certificate on a CRL.
type Entry struct {
	Serial *big.Int
	// RevokedAt is the revocationDate: when the CA recorded the revocation
	// (R-R3). Not after the CRL's ThisUpdate.
	RevokedAt time.Time
	// Reason is the RFC 5280 CRLReason code: 0 unspecified, 1
	// keyCompromise, 2 cACompromise, 3 affiliationChanged, 4 superseded,
	// 5 cessationOfOperation or 9 privilegeWithdrawn, the reasons
	// x509enc.CheckReason allows on CRLs and in OCSP alike. 0 is written as no
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

var (
	oidExtAuthorityKeyID = x509enc.OIDExtAuthorityKeyID
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
// Build encodes the TBSCertList itself (encode.go), hashes it, has
// req.Signer sign the digest, verifies the signature with the issuer
// certificate's key and assembles the CertificateList around it; the
// encoding is byte for byte what x509.CreateRevocationList wrote for the
// same request (TestBuildMatchesReference).
//
// A bad request gives *FieldError values wrapping ErrInvalidRequest, all
// at once (at most ten of a kind, then a count). The caller runs Check on
// the result before publishing it.
func Build(req Request) ([]byte, error) {
	pl, err := prepare(req, true)
	if err != nil {
		return nil, err
	}
	return build(req, pl)
}

// build is Build of a prepared request.
func build(req Request, pl *plan) ([]byte, error) {
	alg, err := x509enc.Algorithm(pl.sigAlg)
	if err != nil {
		return nil, fmt.Errorf("crl: partition %s: %w", req.Partition.Name, err)
	}
	buf, tbs, err := encodeTBS(req, pl, alg)
	if err != nil {
		return nil, fmt.Errorf("crl: partition %s: %w", req.Partition.Name, err)
	}
	digest := alg.Digest(buf[tbs:])
	sig, err := req.Signer.Sign(rand.Reader, digest, alg.Hash)
	if err != nil {
		return nil, fmt.Errorf("crl: partition %s: signing: %w", req.Partition.Name, err)
	}
	if err := alg.Verify(req.Issuer.PublicKey, digest, sig); err != nil {
		return nil, fmt.Errorf("crl: partition %s: the signer's signature does not verify with the issuer's key: %w", req.Partition.Name, err)
	}
	return x509enc.AppendSigned(buf, tbs, alg.ID, sig), nil
}

// seconds is t rounded down to the second, without its monotonic clock
// reading: X.509 times keep whole seconds. It is t.Truncate(time.Second)
// (TestSeconds) at a fraction of its cost, for the three times per entry
// a CRL takes it.
func seconds(t time.Time) time.Time { return t.Round(0).Add(-time.Duration(t.Nanosecond())) }

// plan is what prepare works out from a valid request.
type plan struct {
	sigAlg                 x509.SignatureAlgorithm
	idp                    []byte // issuingDistributionPoint value
	thisUpdate, nextUpdate time.Time
	sorted                 []sortKey // req.Entries by ascending serial
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
	if len(req.Entries) > math.MaxInt32 {
		fail("Request.Entries", "%d entries; at most %d", len(req.Entries), math.MaxInt32)
	} else if serialsOK := validateEntries(req, pl.thisUpdate, fail); serialsOK {
		pl.sorted = sortedKeys(req.Entries)
		for i := 1; i < len(pl.sorted); i++ {
			if pl.sorted[i].serial == pl.sorted[i-1].serial {
				a, b := min(pl.sorted[i-1].index, pl.sorted[i].index), max(pl.sorted[i-1].index, pl.sorted[i].index)
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
	if alg, err := x509enc.ForPublicKey(iss.PublicKey); err != nil {
		fail("Request.Issuer", "%v", err)
	} else {
		pl.sigAlg = alg.Algorithm
	}
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
		if !validateEntry(e, thisUpdate, failEntry) {
			serialsOK = false
		}
	}
	return serialsOK
}

// validateEntry checks one entry and reports whether its serial is valid.
func validateEntry(e Entry, thisUpdate time.Time, failEntry func(field, format string, args ...any)) bool {
	serialOK := true
	switch n := e.Serial; {
	case n == nil:
		failEntry("Serial", "required")
		serialOK = false
	case n.Sign() <= 0:
		failEntry("Serial", "must be positive")
		serialOK = false
	case n.BitLen() > 159:
		failEntry("Serial", "%d bits encode to more than 20 octets", n.BitLen())
		serialOK = false
	}
	validateTime("RevokedAt", e.RevokedAt, failEntry)
	if !e.RevokedAt.IsZero() && !thisUpdate.IsZero() && seconds(e.RevokedAt).After(thisUpdate) {
		failEntry("RevokedAt", "after the CRL's ThisUpdate")
	}
	if err := x509enc.CheckReason(e.Reason); err != nil {
		failEntry("Reason", "%d is not a reason code of these CRLs: %v", e.Reason, err)
	}
	if !e.InvalidityDate.IsZero() {
		validateTime("InvalidityDate", e.InvalidityDate, failEntry)
	}
	return serialOK
}

// entryProblem says why e cannot be written on a CRL with thisUpdate, or ""
// if it can: the checks Build makes of each entry, one entry at a time. The
// publisher leaves out (and reports) an entry with a problem rather than
// let it stop its whole partition.
func entryProblem(e Entry, thisUpdate time.Time) string {
	var why string
	validateEntry(e, seconds(thisUpdate), func(field, format string, args ...any) {
		if why == "" {
			why = field + ": " + fmt.Sprintf(format, args...)
		}
	})
	return why
}

// sortKey is an entry's serial as a fixed-width big-endian key, which
// compares like the number, and its index in Request.Entries.
type sortKey struct {
	serial serialNumber
	index  int32
	lead   uint8 // zero octets before the serial's first significant one
}

// magnitude is the serial's big-endian octets without leading zeros.
func (k *sortKey) magnitude() []byte { return k.serial[k.lead:] }

// serialNumber is a serial of at most 20 octets (RFC 5280 §4.1.2.2),
// big-endian, padded with leading zeros. It prints with %x as the
// *big.Int would.
type serialNumber [20]byte

func (s serialNumber) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), new(big.Int).SetBytes(s[:]))
}

// compareSerials orders serials as numbers, a word at a time.
func compareSerials(a, b *serialNumber) int {
	if x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8]); x != y {
		return cmp.Compare(x, y)
	}
	if x, y := binary.BigEndian.Uint64(a[8:16]), binary.BigEndian.Uint64(b[8:16]); x != y {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(binary.BigEndian.Uint32(a[16:]), binary.BigEndian.Uint32(b[16:]))
}

// sortedKeys returns the keys of entries by ascending serial. The serials
// must be positive and at most 20 octets (validateEntries). Sorting keys
// rather than entries compares serials without following three pointers
// per comparison, and the encoder takes each serial's octets from its key.
// Entries that come in serial order, as the store gives them, are only
// checked, not sorted.
func sortedKeys(entries []Entry) []sortKey {
	keys := make([]sortKey, len(entries))
	for i, e := range entries {
		e.Serial.FillBytes(keys[i].serial[:])
		keys[i].index = int32(i)
		keys[i].lead = uint8(len(keys[i].serial) - (e.Serial.BitLen()+7)/8)
	}
	byKey := func(a, b sortKey) int { return compareSerials(&a.serial, &b.serial) }
	if !slices.IsSortedFunc(keys, byKey) {
		slices.SortFunc(keys, byKey)
	}
	return keys
}
