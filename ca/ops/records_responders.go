package ops

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/store"
)

// maxSerialHex bounds a serial: 20 octets (RFC 5280 §4.1.2.2).
const maxSerialHex = 40

// ListResponders implements opsv1.OperationsServer: every delegated OCSP
// responder certificate the CA signed (R-R6), by serial.
func (r *Records) ListResponders(ctx context.Context, _ *opsv1.ListRespondersRequest) (*opsv1.ListRespondersResponse, error) {
	if _, err := actor(ctx); err != nil {
		return nil, err
	}
	resp := &opsv1.ListRespondersResponse{}
	err := r.cfg.Store.ResponderCertificates(func(rec *storev1.ResponderCertificate) error {
		resp.Responders = append(resp.Responders, responder(rec))
		return nil
	})
	if err != nil {
		return nil, r.statusError(err)
	}
	return resp, nil
}

// RevokeResponder implements opsv1.OperationsServer: revokes a responder
// certificate (reason keyCompromise) and blocks its key from being
// certified again, audited with the operator's name in the same
// transaction (store.RevokeResponder). Revoking it again changes nothing.
func (r *Records) RevokeResponder(ctx context.Context, req *opsv1.RevokeResponderRequest) (*opsv1.RevokeResponderResponse, error) {
	who, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	serial, err := parseSerial(req.GetSerial())
	if err != nil {
		return nil, r.statusError(err)
	}
	rec, err := r.cfg.Store.RevokeResponder(serial, r.cfg.Now(), store.ReasonKeyCompromise, who)
	if errors.Is(err, store.ErrNotFound) {
		return nil, r.statusError(&ca.Error{Kind: ca.KindNotFound, Violations: []ca.Violation{{Field: "serial", Rule: "R-R6",
			Description: fmt.Sprintf("no responder certificate has serial %x (ListResponders)", serial)}}})
	}
	if err != nil {
		return nil, r.statusError(err)
	}
	return &opsv1.RevokeResponderResponse{Responder: responder(rec)}, nil
}

// parseSerial reads a serial in hex as the CA prints it, an optional 0x
// before it (ca.ParseSerial).
func parseSerial(s string) ([]byte, error) {
	b, err := ca.ParseSerial(strings.TrimPrefix(strings.ToLower(s), "0x"))
	if err != nil {
		return nil, invalid("serial", "R-R6", "must be 1 to %d hex digits, as ListResponders gives it", maxSerialHex)
	}
	return b, nil
}

// responder is a responder certificate record as the API gives it.
func responder(rec *storev1.ResponderCertificate) *opsv1.Responder {
	out := &opsv1.Responder{Serial: ca.SerialHex(rec.GetSerial()), Issuer: rec.GetIssuer(), Replica: rec.GetReplica(),
		State: strings.TrimPrefix(rec.GetState().String(), "CERT_STATE_"), NotAfter: rfc3339(rec.GetNotAfter().AsTime()),
		Key: "sha256:" + hex.EncodeToString(rec.GetPublicKeySha256())}
	if rv := rec.GetRevocation(); rv != nil {
		out.RevokedAt = rfc3339(rv.GetRevokedAt().AsTime())
	}
	return out
}
