package ops_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	"github.com/shomei-pki/shomei/ca/ops"
)

// as is a context naming operator who on h's development CA.
func (h *harness) as(who string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), ops.OperatorHeader, who)
}

// TestAttackStaleRotation: two rotations of one profile proposed while
// sign-g1 is the newest generation. Approving the first makes sign-g2;
// approving the second must then be refused (R-K1: what the approvers
// agreed to was replacing sign-g1, not the key just made), and nothing
// changes: no sign-g3, the proposal still open.
func TestAttackStaleRotation(t *testing.T) {
	h := start(t, tokenRecords)
	rotate := &opsv1.Action{Action: &opsv1.Action_Rotate{Rotate: &opsv1.RotateKey{Profile: opsv1.Profile_PROFILE_SIGN}}}
	var ids []string
	for range 2 {
		out, err := h.ops.Propose(h.as("alice"), &opsv1.ProposeRequest{Action: rotate, Reason: "yearly rotation"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out.Proposal.Id)
	}
	first, err := h.ops.Approve(h.as("bob"), &opsv1.ApproveRequest{Id: ids[0]})
	if err != nil || first.Proposal.State != opsv1.ProposalState_PROPOSAL_STATE_EXECUTED {
		t.Fatalf("first rotation: %v, %v", first, err)
	}
	second, err := h.ops.Approve(h.as("bob"), &opsv1.ApproveRequest{Id: ids[1]})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("approving the stale rotation: %v, %v; want FailedPrecondition", second.GetProposal(), err)
	}
	keys, err := h.ops.ListKeys(h.ctx, &opsv1.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range keys.Generations {
		if g.Profile == opsv1.Profile_PROFILE_SIGN && g.Generation > 2 {
			t.Errorf("the stale proposal made %s", g.Name)
		}
	}
	list, err := h.ops.ListProposals(h.ctx, &opsv1.ListProposalsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Proposals {
		if p.Id == ids[1] && p.State != opsv1.ProposalState_PROPOSAL_STATE_OPEN {
			t.Errorf("the refused approval left the proposal %v", p.State)
		}
	}
}

// TestAttackWatchStreams: WatchProposal streams are held open by their
// callers for as long as a proposal stays open (a day by default), each a
// goroutine woken, with a store read, at every change of any proposal. An
// operator (or a stolen operator token) opening thousands of them must be
// refused past a bound (ResourceExhausted), while the ones already open
// keep working.
func TestAttackWatchStreams(t *testing.T) {
	const bound = 64 // ops' bound on concurrent watchers
	h := start(t, tokenRecords)
	rotate := &opsv1.Action{Action: &opsv1.Action_Rotate{Rotate: &opsv1.RotateKey{Profile: opsv1.Profile_PROFILE_AUTH}}}
	out, err := h.ops.Propose(h.ctx, &opsv1.ProposeRequest{Action: rotate, Reason: "yearly rotation"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	var refused error
	for i := 0; i <= bound && refused == nil; i++ {
		w, err := h.ops.WatchProposal(ctx, &opsv1.WatchProposalRequest{Id: out.Proposal.Id})
		if err == nil {
			_, err = w.Recv()
		}
		if err != nil {
			if i < bound {
				t.Fatalf("watcher %d: %v", i+1, err)
			}
			refused = err
		}
	}
	if status.Code(refused) != codes.ResourceExhausted {
		t.Fatalf("watcher %d: %v; want ResourceExhausted", bound+1, refused)
	}
}
