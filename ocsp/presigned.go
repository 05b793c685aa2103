package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"math/big"
	"slices"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// ResponseStore is where a Responder reads the responses a Presigner made
// (Config.Presigned): the CA's store, a replica's own.
//
// A ResponseStore keeps a response only while the status it gives
// (storev1.PresignedResponse.revoked) is the certificate's recorded
// status: the transaction that changes a status drops the response, and a
// response signed from a status read before that transaction is not
// stored after it (PresignStore.SavePresigned). Together with Invalidate
// this keeps doc.go's invariant: no request after a status change is
// answered from a response made before it.
type ResponseStore interface {
	// PresignedResponse is the pre-signed response of serial (big-endian,
	// no leading zeros), or nil when there is none.
	PresignedResponse(serial []byte) (*storev1.PresignedResponse, error)
}

// signedBy is a delegated responder certificate whose pre-signed responses
// are served: the current one of an issuer, or an earlier certificate of
// the same responder key (a renewal, R-R6) while it is valid.
type signedBy struct {
	// issuer is the issuer it speaks for, in the set that holds it.
	issuer *issuer
	cert   *x509.Certificate
	// certs is its certs field: the tail of the responses it signed.
	certs []byte
}

// maxEarlierResponders bounds the earlier certificates kept per issuer:
// renewals come hours apart (responders.Keeper), so a few cover every
// response still served.
const maxEarlierResponders = 4

// knownResponders are the responder certificates of set whose pre-signed
// responses are served: each issuer's own, and from old (the set it
// replaces, or nil) the earlier certificates of the same issuer and the
// same responder key that are still valid at now. A response signed by a
// responder key no longer used (a new key after a revocation) is not
// served, nor is one signed by a certificate this Responder never had (a
// renewal before a restart): those are signed again.
func knownResponders(set *issuerSet, old *issuerSet, now time.Time) map[[sha256.Size]byte]*signedBy {
	out := make(map[[sha256.Size]byte]*signedBy, len(set.issuers))
	for _, in := range set.issuers {
		out[in.responderSum] = &signedBy{issuer: in, cert: in.Responder, certs: in.certs}
	}
	if old == nil {
		return out
	}
	earlier := make([]*signedBy, 0, len(old.responders))
	for _, sb := range old.responders {
		earlier = append(earlier, sb)
	}
	// The latest first, so that the bound drops the oldest.
	slices.SortFunc(earlier, func(a, b *signedBy) int { return b.cert.NotAfter.Compare(a.cert.NotAfter) })
	kept := map[*issuer]int{}
	for _, sb := range earlier {
		in := set.byName[sb.issuer.names[0]]
		sum := sha256.Sum256(sb.cert.Raw)
		switch {
		case in == nil, out[sum] != nil, !now.Before(sb.cert.NotAfter),
			!bytes.Equal(sb.cert.RawSubjectPublicKeyInfo, in.Responder.RawSubjectPublicKeyInfo),
			kept[in] >= maxEarlierResponders:
			continue
		}
		kept[in]++
		out[sum] = &signedBy{issuer: in, cert: sb.cert, certs: sb.certs}
	}
	return out
}

// presigned is the pre-signed response to id, a CertID of is, when the
// store holds one that may be served at now; nil otherwise (the caller
// signs). It reads the store only for the CertID form pre-signed.
func (r *Responder) presigned(set *issuerSet, is *issuer, id CertID, now time.Time) *response {
	if r.responses == nil || id.HashAlgorithm != crypto.SHA1 {
		return nil
	}
	want, err := is.presignCertID(id.SerialNumber)
	if err != nil || !bytes.Equal(id.raw, want) {
		return nil
	}
	rec, err := r.responses.PresignedResponse(id.SerialNumber.Bytes())
	if err != nil {
		// The store may be down: signing still answers.
		r.log.Warn("ocsp: reading a pre-signed response", "serial", fmt.Sprintf("%x", id.SerialNumber), "err", err)
		return nil
	}
	if rec == nil {
		return nil
	}
	resp, err := r.fromRecord(set, is, want, rec, now)
	if err != nil {
		r.log.Debug("ocsp: pre-signed response not served", "serial", fmt.Sprintf("%x", id.SerialNumber), "err", err)
		return nil
	}
	return resp
}

// fromRecord is the response a stored record makes for certID, a CertID
// of is, if it may be served at now: signed by a responder certificate of
// is (knownResponders) valid now, for certID, no longer than the
// validity, and less than half its validity old, as a cached response.
func (r *Responder) fromRecord(set *issuerSet, is *issuer, certID []byte, rec *storev1.PresignedResponse, now time.Time) (*response, error) {
	sum := rec.GetResponderSha256()
	if len(sum) != sha256.Size {
		return nil, fmt.Errorf("responder_sha256 of %d octets", len(sum))
	}
	sb := set.responders[[sha256.Size]byte(sum)]
	switch {
	case sb == nil:
		return nil, fmt.Errorf("signed by responder %x, which no longer serves", sum)
	case sb.issuer != is:
		return nil, fmt.Errorf("signed by the responder of issuer %s, not %s", sb.issuer.keyID, is.keyID)
	case now.Before(sb.cert.NotBefore) || !now.Before(sb.cert.NotAfter):
		return nil, fmt.Errorf("its responder certificate is valid from %s to %s, not now", rfc3339(sb.cert.NotBefore), rfc3339(sb.cert.NotAfter))
	}
	if !rec.GetThisUpdate().IsValid() || !rec.GetNextUpdate().IsValid() {
		return nil, fmt.Errorf("no thisUpdate or nextUpdate")
	}
	this, next := rec.ThisUpdate.AsTime(), rec.NextUpdate.AsTime()
	span := next.Sub(this)
	reuseUntil := this.Add(span / 2)
	switch {
	case span <= 0 || span > r.validity:
		return nil, fmt.Errorf("valid for %v; the validity is %v", span, r.validity)
	case next.After(sb.cert.NotAfter):
		return nil, fmt.Errorf("nextUpdate %s passes its responder's notAfter", rfc3339(next))
	case now.Before(this):
		return nil, fmt.Errorf("thisUpdate %s is ahead", rfc3339(this))
	case !now.Before(reuseUntil):
		return nil, fmt.Errorf("more than half its validity old (thisUpdate %s)", rfc3339(this))
	case !bytes.Contains(rec.GetResponseHead(), certID):
		return nil, fmt.Errorf("not a response for this CertID")
	}
	st := Good
	if rec.GetRevoked() {
		st = Revoked
	}
	resp := &response{
		head: rec.ResponseHead, tail: sb.certs,
		thisUpdate: this, nextUpdate: next, reuseUntil: reuseUntil,
		statuses: []CertStatus{st}, reusable: true,
	}
	resp.prepare(false)
	return resp, nil
}

// presign signs the response to the pre-signed CertID of serial
// (presignCertID), with status st, by is's current responder at now: what
// Presigner stores. Only good and revoked are pre-signed; st's ThisUpdate
// is used as for a request (single).
func (r *Responder) presign(ctx context.Context, is *issuer, serial *big.Int, st Status) (*response, error) {
	if st.Status != Good && st.Status != Revoked {
		return nil, fmt.Errorf("status %v is not pre-signed", st.Status)
	}
	certID, err := is.presignCertID(serial)
	if err != nil {
		return nil, err
	}
	now := r.now().UTC().Truncate(time.Second)
	rc := is.Responder
	if now.Before(rc.NotBefore) || !now.Before(rc.NotAfter) {
		return nil, fmt.Errorf("the delegated responder certificate of issuer %s is valid from %s to %s, not now", is.keyID, rfc3339(rc.NotBefore), rfc3339(rc.NotAfter))
	}
	s, err := r.single(rc, certID, st, now)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return is.sign(ctx, now, []single{s}, nil)
}
