package ops

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	"github.com/shomei-pki/shomei/ca/service"
	"github.com/shomei-pki/shomei/ca/store"
)

// TestAttackDevNameSelfApproval: alice proposes on the CA run as a
// development CA (no clients: she is "local:alice"), then, the CA
// restarted with clients configured on the same store, approves her own
// proposal as the configured operator "alice" (or "ALICE"). One person
// would have run a key operation alone (R-K1): refused.
func TestAttackDevNameSelfApproval(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var ids []string
	func() { // the development CA
		ap, err := NewApprovals(ApprovalsConfig{Store: st, CA: &recordingCA{}, Now: func() time.Time {
			return time.Date(2027, 4, 1, 8, 0, 0, 0, time.UTC) // an hour before newApprovalEnv's clock
		}})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := New(&Keys{}, ap, &Records{})
		if err != nil {
			t.Fatal(err)
		}
		gate, err := service.NewGate(service.GateConfig{})
		if err != nil {
			t.Fatal(err)
		}
		gs := grpc.NewServer(gate.ServerOptions()...)
		defer gs.Stop()
		opsv1.RegisterOperationsServer(gs, srv)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go gs.Serve(lis)
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, name := range []string{"alice", "Alice"} {
			ctx := metadata.AppendToOutgoingContext(context.Background(), OperatorHeader, name)
			out, err := opsv1.NewOperationsClient(conn).Propose(ctx, &opsv1.ProposeRequest{Action: retire(1), Reason: "the last certificate expired"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, out.Proposal.Id)
		}
	}()
	e := newApprovalEnv(t, 2, st) // restarted with clients configured
	for _, id := range ids {
		_, err := e.approve("alice", id)
		wantCode(t, "alice approves what local:alice proposed", err, codes.FailedPrecondition, "proposer cannot approve")
	}
	if calls, _ := e.ca.ran(); len(calls) != 0 {
		t.Errorf("ran %v with one person's approvals", calls)
	}
}
