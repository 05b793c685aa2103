package ops

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
)

// Approvals answers for proposals: Propose, ListProposals, Approve,
// WatchProposal.
type Approvals struct{}

// ApprovalsConfig is what Approvals needs.
type ApprovalsConfig struct{}

// NewApprovals makes the Approvals part.
func NewApprovals(ApprovalsConfig) (*Approvals, error) { return &Approvals{}, nil }

// Propose implements opsv1.OperationsServer.
func (*Approvals) Propose(context.Context, *opsv1.ProposeRequest) (*opsv1.ProposeResponse, error) {
	return nil, status.Error(codes.Unimplemented, "Propose is not built yet")
}

// ListProposals implements opsv1.OperationsServer.
func (*Approvals) ListProposals(context.Context, *opsv1.ListProposalsRequest) (*opsv1.ListProposalsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "ListProposals is not built yet")
}

// Approve implements opsv1.OperationsServer.
func (*Approvals) Approve(context.Context, *opsv1.ApproveRequest) (*opsv1.ApproveResponse, error) {
	return nil, status.Error(codes.Unimplemented, "Approve is not built yet")
}

// WatchProposal implements opsv1.OperationsServer.
func (*Approvals) WatchProposal(*opsv1.WatchProposalRequest, grpc.ServerStreamingServer[opsv1.WatchProposalResponse]) error {
	return status.Error(codes.Unimplemented, "WatchProposal is not built yet")
}
