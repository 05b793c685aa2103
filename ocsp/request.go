package ocsp

import (
	"bytes"
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// ErrMalformed is wrapped by every error ParseRequest returns, and by the
// responder's own refusals of a request (too large, bad base64, too many
// CertIDs): all are answered malformedRequest.
var ErrMalformed = errors.New("ocsp: malformed request")

// malformed says which field of a request is wrong, and why.
func malformed(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, field, fmt.Sprintf(format, args...))
}

// Object identifiers of requests and responses.
var (
	oidSHA1           = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256         = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidOCSPBasic      = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidOCSPNonce      = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
	oidOCSPNoCheck    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
	oidInvalidityDate = x509enc.OIDExtInvalidityDate

	// The contents octets of the CertID hash OIDs.
	oidSHA1DER, oidSHA256DER = oidContents(oidSHA1), oidContents(oidSHA256)
)

// oidContents is the DER contents octets of oid.
func oidContents(oid asn1.ObjectIdentifier) []byte {
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1ObjectIdentifier(oid)
	der := cryptobyte.String(b.BytesOrPanic())
	var contents cryptobyte.String
	der.ReadASN1(&contents, cbasn1.OBJECT_IDENTIFIER)
	return contents
}

// Context-specific constructed tags: [n] EXPLICIT.
var (
	tagExplicit0 = cbasn1.Tag(0).ContextSpecific().Constructed()
	tagExplicit1 = cbasn1.Tag(1).ContextSpecific().Constructed()
	tagExplicit2 = cbasn1.Tag(2).ContextSpecific().Constructed()
)

// Nonce lengths RFC 8954 §2.1 lets a responder accept.
const (
	minNonce = 1
	maxNonce = 32
)

// Request is a parsed OCSPRequest (RFC 6960 §4.1.1).
type Request struct {
	// CertIDs are the requestList's reqCerts, in order; at least one.
	CertIDs []CertID
	// Nonce is the id-pkix-ocsp-nonce requestExtension's value (RFC 8954),
	// nil when there is none.
	Nonce []byte
	// Signed says the request carried an optionalSignature. Its structure
	// is checked; the signature itself is not verified.
	Signed bool
}

// CertID names a certificate by its issuer's name and key hashes and its
// serial number (RFC 6960 §4.1.1).
type CertID struct {
	// HashAlgorithm is crypto.SHA1 or crypto.SHA256.
	HashAlgorithm  crypto.Hash
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	SerialNumber   *big.Int

	// raw is the CertID as the request encoded it: the response echoes
	// it, so a client comparing bytes finds its own hashAlgorithm
	// parameters (NULL or absent) back.
	raw []byte
}

// ParseRequest parses a DER OCSPRequest. It is strict about DER (lengths,
// integers, booleans) and about RFC 6960's structure, refuses trailing data,
// and accepts only SHA-1 and SHA-256 CertIDs. Unknown non-critical
// extensions and the requestorName are ignored; a critical extension other
// than the nonce is refused. Every error wraps ErrMalformed and names the
// field.
func ParseRequest(der []byte) (*Request, error) {
	in := cryptobyte.String(der)
	var outer, tbs cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) {
		return nil, malformed("OCSPRequest", "not a DER SEQUENCE")
	}
	if !in.Empty() {
		return nil, malformed("OCSPRequest", "%d bytes of trailing data", len(in))
	}
	if !outer.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return nil, malformed("tbsRequest", "not a SEQUENCE")
	}
	req := new(Request)
	if outer.PeekASN1Tag(tagExplicit0) {
		var sig cryptobyte.String
		if !outer.ReadASN1(&sig, tagExplicit0) || !checkSignature(sig) {
			return nil, malformed("optionalSignature", "not a Signature")
		}
		req.Signed = true
	}
	if !outer.Empty() {
		return nil, malformed("OCSPRequest", "unexpected element after tbsRequest")
	}

	if tbs.PeekASN1Tag(tagExplicit0) {
		var v cryptobyte.String
		var version int64
		if !tbs.ReadASN1(&v, tagExplicit0) || !v.ReadASN1Integer(&version) || !v.Empty() {
			return nil, malformed("tbsRequest.version", "not an INTEGER")
		}
		if version != 0 {
			return nil, malformed("tbsRequest.version", "%d; only v1 (0) exists", version)
		}
	}
	if tbs.PeekASN1Tag(tagExplicit1) {
		var name, element cryptobyte.String
		var tag cbasn1.Tag
		if !tbs.ReadASN1(&name, tagExplicit1) || !name.ReadAnyASN1Element(&element, &tag) || !name.Empty() {
			return nil, malformed("tbsRequest.requestorName", "not one GeneralName")
		}
	}
	var list cryptobyte.String
	if !tbs.ReadASN1(&list, cbasn1.SEQUENCE) {
		return nil, malformed("tbsRequest.requestList", "not a SEQUENCE")
	}
	for i := 0; !list.Empty(); i++ {
		field := func() string { return fmt.Sprintf("requestList[%d]", i) }
		var one cryptobyte.String
		if !list.ReadASN1(&one, cbasn1.SEQUENCE) {
			return nil, malformed(field(), "not a SEQUENCE")
		}
		id, err := parseCertID(&one, field)
		if err != nil {
			return nil, err
		}
		if one.PeekASN1Tag(tagExplicit0) {
			err := readExtensions(&one, tagExplicit0, field()+".singleRequestExtensions", func(oid asn1.ObjectIdentifier, critical bool, _ []byte) error {
				if critical {
					return malformed(field()+".singleRequestExtensions", "critical extension %v is not supported", oid)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		if !one.Empty() {
			return nil, malformed(field(), "unexpected element after reqCert")
		}
		req.CertIDs = append(req.CertIDs, id)
	}
	if len(req.CertIDs) == 0 {
		return nil, malformed("tbsRequest.requestList", "empty")
	}
	if tbs.PeekASN1Tag(tagExplicit2) {
		const field = "tbsRequest.requestExtensions"
		err := readExtensions(&tbs, tagExplicit2, field, func(oid asn1.ObjectIdentifier, critical bool, value []byte) error {
			if oid.Equal(oidOCSPNonce) {
				nonce, err := parseNonce(value)
				req.Nonce = nonce
				return err
			}
			if critical {
				return malformed(field, "critical extension %v is not supported", oid)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if !tbs.Empty() {
		return nil, malformed("tbsRequest", "unexpected element after requestList")
	}
	return req, nil
}

// parseCertID reads a CertID from s; request names its Request in errors.
func parseCertID(s *cryptobyte.String, request func() string) (CertID, error) {
	bad := func(sub, format string, args ...any) (CertID, error) {
		return CertID{}, malformed(request()+".reqCert"+sub, format, args...)
	}
	var raw, body, alg, nameHash, keyHash cryptobyte.String
	if !s.ReadASN1Element(&raw, cbasn1.SEQUENCE) {
		return bad("", "not a SEQUENCE")
	}
	// One copy of the CertID, which the hashes below are slices of.
	raw = bytes.Clone(raw)
	in := raw
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) || !body.ReadASN1(&alg, cbasn1.SEQUENCE) {
		return bad(".hashAlgorithm", "not an AlgorithmIdentifier")
	}
	// The OID's contents are compared as bytes; only an unexpected one is
	// decoded, for the message.
	whole := alg
	var oidDER cryptobyte.String
	if !alg.ReadASN1(&oidDER, cbasn1.OBJECT_IDENTIFIER) {
		return bad(".hashAlgorithm", "no algorithm OBJECT IDENTIFIER")
	}
	if !alg.Empty() {
		var params cryptobyte.String
		if !alg.ReadASN1(&params, cbasn1.NULL) || !params.Empty() || !alg.Empty() {
			return bad(".hashAlgorithm", "parameters are neither absent nor NULL")
		}
	}
	id := CertID{raw: raw}
	switch {
	case bytes.Equal(oidDER, oidSHA1DER):
		id.HashAlgorithm = crypto.SHA1
	case bytes.Equal(oidDER, oidSHA256DER):
		id.HashAlgorithm = crypto.SHA256
	default:
		var oid asn1.ObjectIdentifier
		if !whole.ReadASN1ObjectIdentifier(&oid) {
			return bad(".hashAlgorithm", "no algorithm OBJECT IDENTIFIER")
		}
		return bad(".hashAlgorithm", "%v is neither SHA-1 nor SHA-256", oid)
	}
	size := id.HashAlgorithm.Size()
	if !body.ReadASN1(&nameHash, cbasn1.OCTET_STRING) {
		return bad(".issuerNameHash", "not an OCTET STRING")
	}
	if len(nameHash) != size {
		return bad(".issuerNameHash", "%d octets; %v makes %d", len(nameHash), id.HashAlgorithm, size)
	}
	if !body.ReadASN1(&keyHash, cbasn1.OCTET_STRING) {
		return bad(".issuerKeyHash", "not an OCTET STRING")
	}
	if len(keyHash) != size {
		return bad(".issuerKeyHash", "%d octets; %v makes %d", len(keyHash), id.HashAlgorithm, size)
	}
	id.IssuerNameHash, id.IssuerKeyHash = nameHash[:size:size], keyHash[:size:size]
	id.SerialNumber = new(big.Int)
	if !body.ReadASN1Integer(id.SerialNumber) {
		return bad(".serialNumber", "not a DER INTEGER")
	}
	if !body.Empty() {
		return bad("", "unexpected element after serialNumber")
	}
	return id, nil
}

// parseNonce reads the nonce extension's value: a DER OCTET STRING of 1 to
// 32 octets (RFC 8954 §2.1: other lengths are refused with malformedRequest).
func parseNonce(value []byte) ([]byte, error) {
	const field = "tbsRequest.requestExtensions.nonce"
	v := cryptobyte.String(value)
	var nonce cryptobyte.String
	if !v.ReadASN1(&nonce, cbasn1.OCTET_STRING) || !v.Empty() {
		return nil, malformed(field, "extnValue is not a DER OCTET STRING (RFC 8954)")
	}
	if len(nonce) < minNonce || len(nonce) > maxNonce {
		return nil, malformed(field, "%d octets; RFC 8954 allows %d to %d", len(nonce), minNonce, maxNonce)
	}
	return bytes.Clone(nonce), nil
}

// readExtensions reads [n] EXPLICIT Extensions from s and calls fn for each
// extension. Extensions must not be empty nor repeat an extnID (RFC 5280
// §4.2).
func readExtensions(s *cryptobyte.String, tag cbasn1.Tag, field string, fn func(oid asn1.ObjectIdentifier, critical bool, value []byte) error) error {
	var wrapper, list cryptobyte.String
	if !s.ReadASN1(&wrapper, tag) || !wrapper.ReadASN1(&list, cbasn1.SEQUENCE) || !wrapper.Empty() {
		return malformed(field, "not a SEQUENCE OF Extension")
	}
	if list.Empty() {
		return malformed(field, "empty")
	}
	var seen []asn1.ObjectIdentifier
	for !list.Empty() {
		var ext, value cryptobyte.String
		var oid asn1.ObjectIdentifier
		critical := false
		if !list.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) {
			return malformed(field, "not an Extension")
		}
		// DER leaves out critical when it is FALSE; some encoders do not.
		if ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&critical) {
			return malformed(field, "extension %v: critical is not a DER BOOLEAN", oid)
		}
		if !ext.ReadASN1(&value, cbasn1.OCTET_STRING) || !ext.Empty() {
			return malformed(field, "extension %v: extnValue is not an OCTET STRING", oid)
		}
		if slices.ContainsFunc(seen, oid.Equal) {
			return malformed(field, "extension %v appears twice", oid)
		}
		seen = append(seen, oid)
		if err := fn(oid, critical, value); err != nil {
			return err
		}
	}
	return nil
}

// checkSignature checks the structure of an optionalSignature's Signature:
// SEQUENCE { AlgorithmIdentifier, BIT STRING, [0] EXPLICIT SEQUENCE OF
// Certificate OPTIONAL }.
func checkSignature(s cryptobyte.String) bool {
	var sig, alg, certs cryptobyte.String
	var bits asn1.BitString
	if !s.ReadASN1(&sig, cbasn1.SEQUENCE) || !s.Empty() ||
		!sig.ReadASN1(&alg, cbasn1.SEQUENCE) || !sig.ReadASN1BitString(&bits) {
		return false
	}
	if sig.PeekASN1Tag(tagExplicit0) {
		var wrapper cryptobyte.String
		if !sig.ReadASN1(&wrapper, tagExplicit0) || !wrapper.ReadASN1(&certs, cbasn1.SEQUENCE) || !wrapper.Empty() {
			return false
		}
		for !certs.Empty() {
			if !certs.SkipASN1(cbasn1.SEQUENCE) {
				return false
			}
		}
	}
	return sig.Empty()
}

// Marshal encodes r as an unsigned DER OCSPRequest: the CertIDs with NULL
// hashAlgorithm parameters, and the nonce extension when r has a nonce.
func (r *Request) Marshal() ([]byte, error) {
	if len(r.CertIDs) == 0 {
		return nil, errors.New("ocsp: request without CertIDs")
	}
	if r.Nonce != nil && (len(r.Nonce) < minNonce || len(r.Nonce) > maxNonce) {
		return nil, fmt.Errorf("ocsp: nonce of %d octets; RFC 8954 allows %d to %d", len(r.Nonce), minNonce, maxNonce)
	}
	for i, id := range r.CertIDs {
		if err := id.check(); err != nil {
			return nil, fmt.Errorf("ocsp: CertID %d: %w", i, err)
		}
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // OCSPRequest
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // TBSRequest
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // requestList
				for _, id := range r.CertIDs {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Request
						id.marshal(b)
					})
				}
			})
			if r.Nonce != nil {
				b.AddASN1(tagExplicit2, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						addNonce(b, r.Nonce)
					})
				})
			}
		})
	})
	return b.Bytes()
}

// check refuses a CertID that cannot be encoded.
func (id CertID) check() error {
	if id.HashAlgorithm != crypto.SHA1 && id.HashAlgorithm != crypto.SHA256 {
		return fmt.Errorf("hash algorithm %v is neither SHA-1 nor SHA-256", id.HashAlgorithm)
	}
	if len(id.IssuerNameHash) != id.HashAlgorithm.Size() || len(id.IssuerKeyHash) != id.HashAlgorithm.Size() {
		return fmt.Errorf("issuer hashes are not %v hashes", id.HashAlgorithm)
	}
	if id.SerialNumber == nil {
		return errors.New("no serial number")
	}
	return nil
}

// marshal adds the DER CertID.
func (id CertID) marshal(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			if id.HashAlgorithm == crypto.SHA1 {
				b.AddASN1ObjectIdentifier(oidSHA1)
			} else {
				b.AddASN1ObjectIdentifier(oidSHA256)
			}
			b.AddASN1NULL()
		})
		b.AddASN1OctetString(id.IssuerNameHash)
		b.AddASN1OctetString(id.IssuerKeyHash)
		b.AddASN1BigInt(id.SerialNumber)
	})
}

// addNonce adds the id-pkix-ocsp-nonce Extension (RFC 8954): its extnValue
// is the DER OCTET STRING of the nonce.
func addNonce(b *cryptobyte.Builder, nonce []byte) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidOCSPNonce)
		b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
			b.AddASN1OctetString(nonce)
		})
	})
}
