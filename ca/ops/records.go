package ops

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
)

// Records answers for what the CA recorded: VerifyAudit, ExportAudit,
// Backup, ListResponders, RevokeResponder, ListRenewalNotices.
type Records struct{}

// RecordsConfig is what Records needs.
type RecordsConfig struct{}

// NewRecords makes the Records part.
func NewRecords(RecordsConfig) (*Records, error) { return &Records{}, nil }

// VerifyAudit implements opsv1.OperationsServer.
func (*Records) VerifyAudit(context.Context, *opsv1.VerifyAuditRequest) (*opsv1.VerifyAuditResponse, error) {
	return nil, status.Error(codes.Unimplemented, "VerifyAudit is not built yet")
}

// ExportAudit implements opsv1.OperationsServer.
func (*Records) ExportAudit(*opsv1.ExportAuditRequest, grpc.ServerStreamingServer[opsv1.ExportAuditResponse]) error {
	return status.Error(codes.Unimplemented, "ExportAudit is not built yet")
}

// Backup implements opsv1.OperationsServer.
func (*Records) Backup(*opsv1.BackupRequest, grpc.ServerStreamingServer[opsv1.BackupResponse]) error {
	return status.Error(codes.Unimplemented, "Backup is not built yet")
}

// ListResponders implements opsv1.OperationsServer.
func (*Records) ListResponders(context.Context, *opsv1.ListRespondersRequest) (*opsv1.ListRespondersResponse, error) {
	return nil, status.Error(codes.Unimplemented, "ListResponders is not built yet")
}

// RevokeResponder implements opsv1.OperationsServer.
func (*Records) RevokeResponder(context.Context, *opsv1.RevokeResponderRequest) (*opsv1.RevokeResponderResponse, error) {
	return nil, status.Error(codes.Unimplemented, "RevokeResponder is not built yet")
}

// ListRenewalNotices implements opsv1.OperationsServer.
func (*Records) ListRenewalNotices(context.Context, *opsv1.ListRenewalNoticesRequest) (*opsv1.ListRenewalNoticesResponse, error) {
	return nil, status.Error(codes.Unimplemented, "ListRenewalNotices is not built yet")
}
