package ops

import (
	"context"
	"fmt"
	"time"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	"github.com/shomei-pki/shomei/ca"
)

// ListRenewalNotices implements opsv1.OperationsServer: ca.RenewalNotices
// at the CA's clock. The answer holds holder ids, for the municipality's
// mailing; they are never logged, and the audit record names the
// municipality, the span and how many (R-K3, R-P4).
func (r *Records) ListRenewalNotices(ctx context.Context, req *opsv1.ListRenewalNoticesRequest) (*opsv1.ListRenewalNoticesResponse, error) {
	who, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	notices, err := ca.RenewalNotices(r.cfg.Store, req.GetMunicipalityCode(), req.GetWithin(), r.cfg.Now())
	if err != nil {
		return nil, r.statusError(err)
	}
	if err := r.record(who, ActionNoticesList, "municipality", req.GetMunicipalityCode(), "within", req.GetWithin(),
		"count", fmt.Sprint(len(notices))); err != nil {
		return nil, r.statusError(err)
	}
	resp := &opsv1.ListRenewalNoticesResponse{Notices: make([]*opsv1.RenewalNotice, len(notices))}
	for i, n := range notices {
		resp.Notices[i] = &opsv1.RenewalNotice{Serial: ca.SerialHex(n.Serial), HolderId: n.HolderID,
			Profile: opsv1.Profile(n.Profile), Expiry: n.NotAfter.Format(time.RFC3339), WindowOpens: n.WindowOpens.Format(time.RFC3339)}
	}
	return resp, nil
}
