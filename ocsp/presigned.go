package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

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

// responderCert is a delegated responder certificate and its certs field.
type responderCert struct {
	cert  *x509.Certificate
	certs certsField
}

// maxEarlierResponders bounds the earlier certificates kept per issuer:
// renewals come hours apart (responders.Keeper), so a few cover every
// response still served.
const maxEarlierResponders = 4

// keepEarlier keeps, as in's earlier certificates, those of old (the same
// issuer in the set replaced; nil if it was not served) that certify the
// same responder key as in's and are still valid at now: the key's
// pre-signed responses made before a renewal stay servable with the
// certificate that covers them. A new responder key (after a revocation)
// keeps none: the old key's responses are not served again.
func (in *issuer) keepEarlier(old *issuer, now time.Time) {
	if old == nil || !bytes.Equal(old.responderKeyHash, in.responderKeyHash) {
		return
	}
	for _, rc := range append([]responderCert{{old.Responder, old.certs}}, old.earlier...) {
		if len(in.earlier) == maxEarlierResponders {
			return
		}
		if rc.cert.Equal(in.Responder) || !now.Before(rc.cert.NotAfter) ||
			slices.ContainsFunc(in.earlier, func(e responderCert) bool { return e.cert.Equal(rc.cert) }) {
			continue
		}
		in.earlier = append(in.earlier, rc)
	}
}

// covering is the certs field of a certificate of is's responder key, the
// current one first, valid at now and from this to next: what a pre-signed
// response of that validity is sent with; nil when there is none.
func (is *issuer) covering(this, next, now time.Time) *certsField {
	covers := func(c *x509.Certificate) bool {
		return !now.Before(c.NotBefore) && now.Before(c.NotAfter) && !this.Before(c.NotBefore) && !next.After(c.NotAfter)
	}
	if covers(is.Responder) {
		return &is.certs
	}
	for i := range is.earlier {
		if covers(is.earlier[i].cert) {
			return &is.earlier[i].certs
		}
	}
	return nil
}

// presigned is the pre-signed response to id, a CertID of is, when the
// store holds one that may be served at now; nil otherwise (the caller
// signs). It reads the store only for the CertID form pre-signed.
func (r *Responder) presigned(is *issuer, id CertID, now time.Time) *response {
	if r.responses == nil || !presignForm(id) {
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
	resp, err := r.fromRecord(is, id.raw, rec, now)
	if err != nil {
		r.log.Debug("ocsp: pre-signed response not served", "serial", fmt.Sprintf("%x", id.SerialNumber), "err", err)
		return nil
	}
	return resp
}

// sha1NULL is the DER AlgorithmIdentifier of SHA-1 with NULL parameters.
var sha1NULL = func() []byte {
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidSHA1)
		b.AddASN1NULL()
	})
	return b.BytesOrPanic()
}()

// presignForm says whether id, a parsed CertID whose hashes name an issuer
// served, is the form pre-signed (presignCertID): SHA-1 with NULL
// parameters. Its hashes are the issuer's and ParseRequest took only a DER
// serial, so its bytes are then presignCertID's, without building them.
func presignForm(id CertID) bool {
	if id.HashAlgorithm != crypto.SHA1 {
		return false
	}
	raw := cryptobyte.String(id.raw)
	var body cryptobyte.String
	return raw.ReadASN1(&body, cbasn1.SEQUENCE) && bytes.HasPrefix(body, sha1NULL)
}

// fromRecord is the response a stored record makes for certID, a CertID
// of is, if it may be served at now: signed by is's responder key, for
// certID, no longer than the validity, less than half its validity old
// (as a cached response), and sent with a certificate of that key valid
// now and over the whole response (covering).
func (r *Responder) fromRecord(is *issuer, certID []byte, rec *storev1.PresignedResponse, now time.Time) (*response, error) {
	if !bytes.Equal(rec.GetResponderKeyId(), is.responderKeyHash) {
		return nil, fmt.Errorf("signed by responder key %x; issuer %s's is %x", rec.GetResponderKeyId(), is.keyID, is.responderKeyHash)
	}
	if !rec.GetThisUpdate().IsValid() || !rec.GetNextUpdate().IsValid() {
		return nil, fmt.Errorf("no thisUpdate or nextUpdate")
	}
	this, next := rec.ThisUpdate.AsTime(), rec.NextUpdate.AsTime()
	span := next.Sub(this)
	reuseUntil := servedUntil(this, next)
	switch {
	case span <= 0 || span > r.validity:
		return nil, fmt.Errorf("valid for %v; the validity is %v", span, r.validity)
	case now.Before(this):
		return nil, fmt.Errorf("thisUpdate %s is ahead", rfc3339(this))
	case !now.Before(reuseUntil):
		return nil, fmt.Errorf("more than half its validity old (thisUpdate %s)", rfc3339(this))
	case !bytes.Contains(rec.GetBasicResponse(), certID):
		return nil, fmt.Errorf("not a response for this CertID")
	}
	certs := is.covering(this, next, now)
	if certs == nil {
		return nil, fmt.Errorf("no certificate of its responder key is valid now and from %s to %s", rfc3339(this), rfc3339(next))
	}
	resp, err := assemble(rec.BasicResponse, certs.der)
	if err != nil {
		return nil, err
	}
	st := Good
	if rec.GetRevoked() {
		st = Revoked
	}
	resp.thisUpdate, resp.nextUpdate, resp.reuseUntil = this, next, reuseUntil
	resp.statuses, resp.reusable = []CertStatus{st}, true
	resp.prepare(false, &certs.sum)
	return resp, nil
}

// presign signs the response to the pre-signed CertID of serial
// (presignCertID), with status st, by is's current responder at now: what
// Presigner stores. Only good and revoked are pre-signed; st's ThisUpdate
// is used as for a request (single). It returns the signed fields of the
// BasicOCSPResponse (what is stored) and the response.
func (r *Responder) presign(ctx context.Context, is *issuer, serial *big.Int, st Status) ([]byte, *response, error) {
	if st.Status != Good && st.Status != Revoked {
		return nil, nil, fmt.Errorf("status %v is not pre-signed", st.Status)
	}
	certID, err := is.presignCertID(serial)
	if err != nil {
		return nil, nil, err
	}
	now := r.now().UTC().Truncate(time.Second)
	rc := is.Responder
	if now.Before(rc.NotBefore) || !now.Before(rc.NotAfter) {
		return nil, nil, fmt.Errorf("the delegated responder certificate of issuer %s is valid from %s to %s, not now", is.keyID, rfc3339(rc.NotBefore), rfc3339(rc.NotAfter))
	}
	s, err := r.single(rc, certID, st, now)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return is.signSingles(ctx, now, []single{s}, nil)
}
