package service

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/validity"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

// Authorizer decides whether the caller of ctx may act for a municipality.
type Authorizer interface {
	// Authenticate checks that ctx comes from a known client, acting for
	// no municipality in particular yet.
	Authenticate(ctx context.Context) error
	Authorize(ctx context.Context, municipalityCode string) error
}

// Service implements cav1.CertificateAuthorityServer.
type Service struct {
	cav1.UnimplementedCertificateAuthorityServer
	ca   *ca.CA
	auth Authorizer
	log  *slog.Logger
}

var _ cav1.CertificateAuthorityServer = (*Service)(nil)

// New serves c, letting auth decide who acts for which municipality.
func New(c *ca.CA, auth Authorizer, log *slog.Logger) (*Service, error) {
	if c == nil || auth == nil {
		return nil, errors.New("service: a CA and an authorizer are required")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Service{ca: c, auth: auth, log: log}, nil
}

// Issue implements cav1.CertificateAuthorityServer.
func (s *Service) Issue(ctx context.Context, req *cav1.IssueRequest) (*cav1.IssueResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetMunicipality().GetCode()); err != nil {
		return nil, err
	}
	out, err := s.ca.Issue(ctx, issueRequest(req.GetMunicipality(), req.GetHolder(), req.GetApplication(), req.GetProfiles(),
		req.GetNameSubstitutions(), req.GetAddressSubstitutions()))
	if err != nil {
		return nil, s.status(err)
	}
	return &cav1.IssueResponse{Certificates: s.certificates(out.Certificates, true)}, nil
}

// Renew implements cav1.CertificateAuthorityServer.
func (s *Service) Renew(ctx context.Context, req *cav1.RenewRequest) (*cav1.RenewResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetMunicipality().GetCode()); err != nil {
		return nil, err
	}
	out, err := s.ca.Renew(ctx, issueRequest(req.GetMunicipality(), req.GetHolder(), req.GetApplication(), req.GetProfiles(),
		req.GetNameSubstitutions(), req.GetAddressSubstitutions()))
	if err != nil {
		return nil, s.status(err)
	}
	resp := &cav1.RenewResponse{Certificates: s.certificates(out.Certificates, true)}
	for _, sn := range out.Superseded {
		resp.SupersededSerials = append(resp.SupersededSerials, ca.SerialHex(sn))
	}
	return resp, nil
}

// GetCertificate implements cav1.CertificateAuthorityServer.
func (s *Service) GetCertificate(ctx context.Context, req *cav1.GetCertificateRequest) (*cav1.GetCertificateResponse, error) {
	rec, err := s.visibleCertificate(ctx, req.GetSerial())
	if err != nil {
		return nil, err
	}
	return &cav1.GetCertificateResponse{Certificate: s.certificate(rec, true)}, nil
}

// visibleCertificate is the certificate with serial, if the caller may act
// for its municipality. The caller is authenticated before the store is
// looked at, and another municipality's serial gets exactly the answer of
// a missing one (issue 9 item 10): the API is no oracle of which serials
// exist.
func (s *Service) visibleCertificate(ctx context.Context, serial string) (*storev1.Certificate, error) {
	if err := s.auth.Authenticate(ctx); err != nil {
		return nil, err
	}
	rec, err := s.ca.Certificate(serial)
	if err != nil {
		return nil, s.status(err)
	}
	if err := s.auth.Authorize(ctx, rec.MunicipalityCode); err != nil {
		if status.Code(err) == codes.PermissionDenied {
			return nil, s.status(ca.SerialNotFound(serial))
		}
		return nil, err
	}
	return rec, nil
}

// ListCertificates implements cav1.CertificateAuthorityServer.
func (s *Service) ListCertificates(ctx context.Context, req *cav1.ListCertificatesRequest) (*cav1.ListCertificatesResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetMunicipalityCode()); err != nil {
		return nil, err
	}
	recs, err := s.ca.HolderCertificates(req.GetMunicipalityCode(), req.GetHolderId())
	if err != nil {
		return nil, s.status(err)
	}
	return &cav1.ListCertificatesResponse{Certificates: s.certificates(recs, false)}, nil
}

// OpenInquiry implements cav1.CertificateAuthorityServer.
func (s *Service) OpenInquiry(ctx context.Context, req *cav1.OpenInquiryRequest) (*cav1.OpenInquiryResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetMunicipalityCode()); err != nil {
		return nil, err
	}
	inq, err := s.ca.OpenInquiry(req.GetMunicipalityCode(), req.GetHolderId())
	if err != nil {
		return nil, s.status(err)
	}
	return &cav1.OpenInquiryResponse{InquiryId: inq.ID, Code: inq.Code, ExpiresAt: inq.ExpiresAt.UTC().Format(time.RFC3339)}, nil
}

// CheckCharacters implements cav1.CertificateAuthorityServer.
func (s *Service) CheckCharacters(_ context.Context, req *cav1.CheckCharactersRequest) (*cav1.CheckCharactersResponse, error) {
	offences, err := s.ca.CheckCharacters(req.GetText())
	if err != nil {
		return nil, s.status(err)
	}
	resp := &cav1.CheckCharactersResponse{Ok: len(offences) == 0}
	for _, o := range offences {
		off := &cav1.Offence{Position: uint32(o.Position), Character: string(o.Rune), CodePoint: codePoint(o.Rune)}
		for _, r := range o.Suggestions {
			off.Suggestions = append(off.Suggestions, string(r))
		}
		resp.Offences = append(resp.Offences, off)
	}
	return resp, nil
}

func codePoint(r rune) string { return fmt.Sprintf("U+%04X", r) }

// status maps an error from package ca onto a gRPC status, once.
func (s *Service) status(err error) error { return StatusError(s.log, err) }

// StatusError maps a CA error (*ca.Error) onto its gRPC status, once, at
// the boundary: for this package and the operator API (ca/ops). Any other
// error is logged and answered Internal, without its text.
func StatusError(log *slog.Logger, err error) error {
	var e *ca.Error
	if !errors.As(err, &e) {
		// Internal errors name certificates by serial at most; details of
		// requests (names, addresses) never reach them (R-P4).
		log.Error("internal error", "error", err)
		return status.Error(codes.Internal, "internal error; the CA's log has the details")
	}
	code := map[ca.Kind]codes.Code{
		ca.KindInvalid:      codes.InvalidArgument,
		ca.KindPrecondition: codes.FailedPrecondition,
		ca.KindNotFound:     codes.NotFound,
		ca.KindPermission:   codes.PermissionDenied,
		ca.KindUnavailable:  codes.Unavailable,
		ca.KindConflict:     codes.AlreadyExists,
	}[e.Kind]
	if code == codes.OK {
		code = codes.Internal
	}
	st := status.New(code, e.Error())
	if len(e.Violations) == 0 {
		return st.Err()
	}
	br := &errdetails.BadRequest{}
	for _, v := range e.Violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: v.Field, Description: v.Rule + ": " + v.Description, Reason: v.Rule,
		})
	}
	if withDetails, derr := st.WithDetails(br); derr == nil {
		st = withDetails
	}
	return st.Err()
}

// certificates converts records; withDER adds DER and PEM.
func (s *Service) certificates(recs []*storev1.Certificate, withDER bool) []*cav1.Certificate {
	out := make([]*cav1.Certificate, len(recs))
	for i, r := range recs {
		out[i] = s.certificate(r, withDER)
	}
	return out
}

func (s *Service) certificate(r *storev1.Certificate, withDER bool) *cav1.Certificate {
	c := &cav1.Certificate{
		Serial:           ca.SerialHex(r.Serial),
		Profile:          cav1.Profile(r.Profile),
		NotBefore:        r.NotBefore.AsTime().UTC().Format(time.RFC3339),
		NotAfter:         r.NotAfter.AsTime().UTC().Format(time.RFC3339),
		ExpiryDate:       r.ExpiryDate,
		ExpiryReason:     r.ExpiryReason,
		HolderId:         r.HolderId,
		MunicipalityCode: r.MunicipalityCode,
		IssuerGeneration: r.IssuerGeneration,
	}
	switch s.ca.Status(r) {
	case validity.StatusValid:
		c.Status = cav1.Status_STATUS_VALID
	case validity.StatusRevoked:
		c.Status = cav1.Status_STATUS_REVOKED
	case validity.StatusExpired:
		c.Status = cav1.Status_STATUS_EXPIRED
	}
	if rv := r.Revocation; rv != nil {
		c.RevokedAt = rv.RevokedAt.AsTime().UTC().Format(time.RFC3339)
		c.RevocationReason = reasonName(rv.Reason)
	}
	if len(r.SupersededBy) > 0 {
		c.SupersededBy = ca.SerialHex(r.SupersededBy)
	}
	if withDER {
		c.Der = r.Der
		c.Pem = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Der}))
	}
	return c
}

// reasonName names an RFC 5280 CRLReason code (x509enc's table).
func reasonName(code int32) string {
	if n := x509enc.ReasonName(int(code)); n != "" {
		return n
	}
	return "unknown"
}
