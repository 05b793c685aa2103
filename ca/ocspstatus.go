package ca

import (
	"context"
	"errors"
	"math/big"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ocsp"
)

// OCSPSource answers OCSP statuses from the CA's store (R-R6). Whoever
// revokes must also invalidate the responder's cache: cmd/shomei-ca follows
// the status-change log for that.
func (c *CA) OCSPSource() ocsp.Source { return ocspSource{c} }

type ocspSource struct{ c *CA }

var _ ocsp.Source = ocspSource{}

// Status: good for an issued certificate of that issuer key generation,
// revoked once revoked (R-R2, R-R3), unknown for a serial the generation
// never issued — including reserved serials whose certificate was never
// delivered (PENDING, ABANDONED). Expired certificates keep their status
// (ocsp.RecordedStatus, which the replicas use too).
func (s ocspSource) Status(_ context.Context, is *ocsp.Issuer, serial *big.Int) (ocsp.Status, error) {
	rec, err := s.c.cfg.Store.Certificate(serial.Bytes())
	if errors.Is(err, store.ErrNotFound) {
		return ocsp.Status{Status: ocsp.Unknown}, nil
	}
	if err != nil {
		return ocsp.Status{}, err
	}
	if cert := s.c.IssuerCertificate(rec.Profile, rec.IssuerGeneration); cert == nil || !cert.Equal(is.Certificate) {
		return ocsp.Status{Status: ocsp.Unknown}, nil
	}
	return ocsp.RecordedStatus(rec.State == storev1.CertState_CERT_STATE_ISSUED, rec.GetRevocation()), nil
}
