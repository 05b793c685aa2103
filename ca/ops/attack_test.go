package ops_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
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

// TestAttackStalledBackup: a backup whose client stops reading holds the
// one backup slot (and a spool file the size of the store) for as long
// as its connection lives: keepalive pings are answered by the client's
// transport, so that is forever, and every other operator's backup is
// ResourceExhausted meanwhile. A send that makes no progress for
// RecordsConfig.SendTimeout ends the stalled backup and frees the slot.
func TestAttackStalledBackup(t *testing.T) {
	h := start(t, tokenRecords)
	padAudit(t, h.store, 3<<20)
	h.stop() // served again below with a short send timeout
	client := serveRecords(t, h, ops.RecordsConfig{Store: h.store, Token: h.tok, Now: h.clock.Now, SendTimeout: time.Second})
	stalled, err := grpc.NewClient(client.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	first, err := opsv1.NewOperationsClient(stalled).Backup(h.ctx, &opsv1.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := first.Recv(); err != nil || m.GetHeader() == nil {
		t.Fatalf("stalled backup's header: %v, %v", m, err)
	}
	// The stalled client reads nothing more. Another operator's backup
	// must eventually go through (the wait is a bound, not a measure).
	deadline := time.Now().Add(30 * time.Second)
	for {
		stream, err := client.ops.Backup(h.ctx, &opsv1.BackupRequest{})
		if err == nil {
			var b *backup
			if b, err = readBackup(stream); err == nil && b.trailer != nil {
				return
			}
		}
		if status.Code(err) != codes.ResourceExhausted || time.Now().After(deadline) {
			t.Fatalf("a backup while a stalled one holds the slot: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// served is an Operations server of its own on h's store and token.
type served struct {
	ops  opsv1.OperationsClient
	addr string
}

// serveRecords serves the Operations service with records built from
// cfg, behind the real gate (development mode).
func serveRecords(t *testing.T, h *harness, cfg ops.RecordsConfig) served {
	t.Helper()
	conn, addr, stop := serveOps(t, h, cfg, nil)
	t.Cleanup(func() { conn.Close(); stop() })
	return served{ops: opsv1.NewOperationsClient(conn), addr: addr}
}

// TestAttackFarTimes: times and spans far in the past or future are
// refused as InvalidArgument before any work, and leave no proposal.
func TestAttackFarTimes(t *testing.T) {
	h := start(t, tokenRecords)
	compromise := func(since string) *opsv1.Action {
		return &opsv1.Action{Action: &opsv1.Action_Compromise{Compromise: &opsv1.CompromiseKey{Profile: opsv1.Profile_PROFILE_SIGN, Generation: 1, InvalidSince: since}}}
	}
	rotate := func(at string) *opsv1.Action {
		return &opsv1.Action{Action: &opsv1.Action_Rotate{Rotate: &opsv1.RotateKey{Profile: opsv1.Profile_PROFILE_SIGN, ActivateAt: at}}}
	}
	for _, act := range []*opsv1.Action{compromise("0000-01-01T00:00:00Z"), compromise("1970-01-01T00:00:00Z"),
		compromise("9999-12-31T23:59:59Z"), rotate("9999-12-31T23:59:59Z"), rotate("0000-01-01T00:00:00Z"),
		rotate("2027-01-01T00:00:00+99:00")} {
		_, err := h.ops.Propose(h.ctx, &opsv1.ProposeRequest{Action: act, Reason: "probe"})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("propose %v: %v; want InvalidArgument", act, err)
		}
	}
	for _, within := range []string{"9223372036854775807ns", "99999999h", "1000000mo", "-1h", "0h"} {
		_, err := h.ops.ListRenewalNotices(h.ctx, &opsv1.ListRenewalNoticesRequest{MunicipalityCode: "13221", Within: within})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("notices within %q: %v; want InvalidArgument", within, err)
		}
	}
	for _, since := range []string{"0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"} {
		s, err := h.ops.ExportAudit(h.ctx, &opsv1.ExportAuditRequest{Since: since})
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("export since %q: %v; want InvalidArgument", since, err)
		}
	}
	list, err := h.ops.ListProposals(h.ctx, &opsv1.ListProposalsRequest{})
	if err != nil || len(list.Proposals) != 0 {
		t.Errorf("after the refusals: %v, %v; want no proposal", list, err)
	}
}
