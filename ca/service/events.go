package service

import (
	"context"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
)

// Events implements cav1.EventsServer.
type Events struct {
	cav1.UnimplementedEventsServer
	s *Service
}

var _ cav1.EventsServer = (*Events)(nil)

// Events returns the Events service sharing s's CA and authorizer.
func (s *Service) Events() *Events { return &Events{s: s} }

// ReportEvent implements cav1.EventsServer.
func (e *Events) ReportEvent(ctx context.Context, req *cav1.ReportEventRequest) (*cav1.ReportEventResponse, error) {
	if err := e.s.auth.Authorize(ctx, req.GetMunicipalityCode()); err != nil {
		return nil, err
	}
	ev := ca.Event{
		ID: req.GetEventId(), Municipality: req.GetMunicipalityCode(), HolderID: req.GetHolderId(),
		Kind: ca.EventKind(req.GetKind()), Cause: int(req.GetCause()), Serial: req.GetSerial(), EffectiveTime: req.GetEffectiveTime(),
	}
	for _, f := range req.GetChangedFields() {
		ev.ChangedFields = append(ev.ChangedFields, ca.ChangedField(f))
	}
	for _, p := range req.GetProfiles() {
		ev.Profiles = append(ev.Profiles, ca.Profile(p))
	}
	res, err := e.s.ca.ReportEvent(ctx, ev)
	if err != nil {
		return nil, e.s.status(err)
	}
	return &cav1.ReportEventResponse{Revoked: revokedCertificates(res.Revoked), Replayed: res.Replayed}, nil
}

// Revoke implements cav1.CertificateAuthorityServer.
func (s *Service) Revoke(ctx context.Context, req *cav1.RevokeRequest) (*cav1.RevokeResponse, error) {
	if _, err := s.visibleCertificate(ctx, req.GetSerial()); err != nil {
		return nil, err
	}
	res, err := s.ca.Revoke(ctx, req.GetSerial(), int32(req.GetReason()), req.GetEffectiveTime())
	if err != nil {
		return nil, s.status(err)
	}
	out := revokedCertificates(res.Revoked)
	resp := &cav1.RevokeResponse{}
	if len(out) > 0 {
		resp.Revoked = out[0]
	}
	return resp, nil
}

func revokedCertificates(entries []*storev1.RevokedEntry) []*cav1.RevokedCertificate {
	out := make([]*cav1.RevokedCertificate, len(entries))
	for i, e := range entries {
		out[i] = &cav1.RevokedCertificate{
			Serial: ca.SerialHex(e.Serial), Profile: cav1.Profile(e.Profile), AlreadyRevoked: e.AlreadyRevoked,
			Reason:         reasonName(e.Revocation.GetReason()),
			RevokedAt:      e.Revocation.GetRevokedAt().AsTime().UTC().Format(time.RFC3339),
			InvalidityDate: e.Revocation.GetInvalidityDate().AsTime().UTC().Format(time.RFC3339),
		}
	}
	return out
}
