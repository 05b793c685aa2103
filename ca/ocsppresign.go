package ca

import (
	"crypto/x509"
	"math/big"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/validity"
	"github.com/shomei-pki/shomei/ocsp"
)

// OCSPResponses is the CA's store as the OCSP responder's store of
// pre-signed responses (ocsp.ResponseStore) and its pre-signer's queue
// (ocsp.PresignStore): ca/store keeps both (presigned.go there), every
// status change queueing its certificate in its own transaction. Every CA
// process serves from it; only the leader pre-signs (cmd/shomei-ca).
type OCSPResponses struct {
	Store PresignedStore
	// Issuer finds the certificate of an issuer key generation; nil when
	// there is none (CA.IssuerCertificate).
	Issuer func(p Profile, generation uint32) *x509.Certificate
}

// PresignedStore keeps the pre-signed OCSP responses and their queue
// (ca/store presigned.go).
type PresignedStore interface {
	PresignedResponse(serial []byte) (*storev1.PresignedResponse, error)
	PresignDue(now time.Time, limit int) ([]store.OCSPTask, error)
	SavePresigned(done []store.OCSPDone) (int, error)
	PresignBackfill(now time.Time, limit int) (bool, error)
	PresignStats(now time.Time, limit int) (int, time.Time, error)
}

var (
	_ PresignedStore     = (*store.Store)(nil)
	_ ocsp.ResponseStore = OCSPResponses{}
	_ ocsp.PresignStore  = OCSPResponses{}
)

// PresignedResponse implements ocsp.ResponseStore.
func (o OCSPResponses) PresignedResponse(serial []byte) (*storev1.PresignedResponse, error) {
	return o.Store.PresignedResponse(serial)
}

// PresignDue implements ocsp.PresignStore: an issued certificate, live at
// now (validity.Live), is pre-signed with its recorded status
// (ocsp.RecordedStatus, as OCSPSource answers it); any other is dropped.
func (o OCSPResponses) PresignDue(now time.Time, limit int) ([]ocsp.PresignTask, error) {
	tasks, err := o.Store.PresignDue(now, limit)
	if err != nil {
		return nil, err
	}
	out := make([]ocsp.PresignTask, len(tasks))
	for i, t := range tasks {
		out[i] = ocsp.PresignTask{Key: t.Key, Serial: new(big.Int).SetBytes(t.Serial), Revision: t.Revision, Drop: true}
		rec := t.Cert
		if rec == nil || rec.State != storev1.CertState_CERT_STATE_ISSUED || !validity.Live(rec.NotAfter.AsTime(), now) {
			continue
		}
		issuer := o.Issuer(rec.Profile, rec.IssuerGeneration)
		if issuer == nil {
			continue
		}
		out[i].Issuer, out[i].Status, out[i].Drop = issuer, ocsp.RecordedStatus(true, rec.GetRevocation()), false
	}
	return out, nil
}

// SavePresigned implements ocsp.PresignStore.
func (o OCSPResponses) SavePresigned(done []ocsp.PresignDone) (int, error) {
	in := make([]store.OCSPDone, len(done))
	for i, d := range done {
		in[i] = store.OCSPDone{Key: d.Key, Serial: d.Serial, Response: d.Response, Retry: d.Retry}
	}
	return o.Store.SavePresigned(in)
}

// PresignBackfill implements ocsp.PresignStore.
func (o OCSPResponses) PresignBackfill(now time.Time, limit int) (bool, error) {
	return o.Store.PresignBackfill(now, limit)
}

// PresignStats implements ocsp.PresignStore.
func (o OCSPResponses) PresignStats(now time.Time, limit int) (int, time.Time, error) {
	return o.Store.PresignStats(now, limit)
}
