package ops

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/service"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/internal/config"
)

// recordingCA stands for *ca.CA in these tests of the approval rules: it
// records what ran, with which approval. (The compromise itself runs for
// real in ca and in cmd/shomei-ca's e2e test.)
type recordingCA struct {
	mu       sync.Mutex
	calls    []string
	by       []ca.Approval
	checkErr error
}

func (f *recordingCA) record(call string, by ca.Approval) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	f.by = append(f.by, by)
}

func (f *recordingCA) ran() ([]string, []ca.Approval) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls), slices.Clone(f.by)
}

func (f *recordingCA) CheckRotate(ca.Profile, time.Time) error             { return f.checkErr }
func (f *recordingCA) CheckRetire(ca.Profile, uint32) error                { return f.checkErr }
func (f *recordingCA) CheckDestroy(ca.Profile, uint32) error               { return f.checkErr }
func (f *recordingCA) CheckCompromise(ca.Profile, uint32, time.Time) error { return f.checkErr }
func (f *recordingCA) Rotate(_ context.Context, p ca.Profile, _ time.Time, by ca.Approval) (*storev1.IssuerKey, error) {
	f.record("rotate", by)
	return &storev1.IssuerKey{Profile: p, Generation: 2}, nil
}
func (f *recordingCA) Retire(_ context.Context, _ ca.Profile, _ uint32, by ca.Approval) error {
	f.record("retire", by)
	return nil
}
func (f *recordingCA) Destroy(_ context.Context, _ ca.Profile, _ uint32, by ca.Approval) error {
	f.record("destroy", by)
	return errors.New("the HSM refused")
}
func (f *recordingCA) Compromise(_ context.Context, _ ca.Profile, _ uint32, _ time.Time, by ca.Approval, progress func(done, total uint64)) (*store.CompromiseResult, error) {
	f.record("compromise", by)
	for done := uint64(0); done <= 4; done += 2 {
		progress(done, 4)
	}
	return &store.CompromiseResult{Revoked: 4}, nil
}

var _ KeyOperator = (*recordingCA)(nil)

// testClock is the approvals' injected clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// approvalEnv is an Approvals part behind the real gate, on a real store,
// served over gRPC on TCP, with a client per operator.
type approvalEnv struct {
	ca     *recordingCA
	store  *store.Store
	clock  *testClock
	ops    map[string]opsv1.OperationsClient
	cancel context.CancelFunc
	// stopping is ApprovalsConfig.Stopping: closing it is the CA
	// starting to stop.
	stopping chan struct{}
}

var operators = []string{"alice", "bob", "carol"}

func newApprovalEnv(t *testing.T, required int, st *store.Store) *approvalEnv {
	t.Helper()
	if st == nil {
		var err error
		if st, err = store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
	}
	e := &approvalEnv{ca: &recordingCA{}, store: st, clock: &testClock{t: time.Date(2027, 4, 1, 9, 0, 0, 0, time.UTC)}, ops: map[string]opsv1.OperationsClient{},
		stopping: make(chan struct{})}
	ap, err := NewApprovals(ApprovalsConfig{Store: st, CA: e.ca, Approvals: config.Approvals{Required: required}, Now: e.clock.now, Stopping: e.stopping})
	if err != nil {
		t.Fatal(err)
	}
	// The other parts answer nothing these tests call.
	srv, err := New(&Keys{}, ap, &Records{})
	if err != nil {
		t.Fatal(err)
	}
	var clients []service.Client
	for _, name := range append(operators, "kiyose") {
		clients = append(clients, service.Client{Name: name, Token: "token-of-" + name + "-0123456789", Operator: name != "kiyose",
			Municipalities: map[bool][]string{true: {"13221"}}[name == "kiyose"]})
	}
	auth, err := service.NewTokenAuthorizer(clients)
	if err != nil {
		t.Fatal(err)
	}
	gate, err := service.NewGate(service.GateConfig{Clients: auth})
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(gate.ServerOptions()...)
	opsv1.RegisterOperationsServer(gs, srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ap.Run(ctx); close(done) }()
	e.cancel = func() { cancel(); <-done }
	t.Cleanup(func() { gs.Stop(); e.cancel() })
	for _, name := range append(operators, "kiyose") {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(clienttoken.Bearer("token-of-"+name+"-0123456789")))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		e.ops[name] = opsv1.NewOperationsClient(conn)
	}
	return e
}

func retire(gen uint32) *opsv1.Action {
	return &opsv1.Action{Action: &opsv1.Action_Retire{Retire: &opsv1.RetireKey{Profile: opsv1.Profile_PROFILE_SIGN, Generation: gen}}}
}

func (e *approvalEnv) propose(t *testing.T, who string, act *opsv1.Action) *opsv1.Proposal {
	t.Helper()
	out, err := e.ops[who].Propose(context.Background(), &opsv1.ProposeRequest{Action: act, Reason: "the last certificate expired"})
	if err != nil {
		t.Fatalf("%s proposes: %v", who, err)
	}
	return out.Proposal
}

func (e *approvalEnv) approve(who, id string) (*opsv1.Proposal, error) {
	out, err := e.ops[who].Approve(context.Background(), &opsv1.ApproveRequest{Id: id})
	return out.GetProposal(), err
}

// wantCode fails unless err has code and its message says want.
func wantCode(t *testing.T, what string, err error, code codes.Code, want string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v; want %v saying %q", what, err, code, want)
	}
}

// TestApprovalRules: issue 11 "done when" 3, through real gRPC and the
// real gate. A proposal cannot be approved by its proposer nor twice by
// anyone, runs only with the required approvals of distinct operators,
// expires on time (injected clock) and then never runs.
func TestApprovalRules(t *testing.T) {
	t.Run("proposer cannot approve; a second operator can", func(t *testing.T) {
		e := newApprovalEnv(t, 2, nil)
		p := e.propose(t, "alice", retire(1))
		if p.State != opsv1.ProposalState_PROPOSAL_STATE_OPEN || len(p.Id) != 16 || !slices.Equal(p.Approvers, []string{"alice"}) || p.Required != 2 {
			t.Fatalf("proposed: %v", p)
		}
		_, err := e.approve("alice", p.Id)
		wantCode(t, "the proposer approves", err, codes.FailedPrecondition, "proposer cannot approve")
		if calls, _ := e.ca.ran(); len(calls) != 0 {
			t.Fatalf("ran %v with the proposer's approval only", calls)
		}
		got, err := e.approve("bob", p.Id)
		if err != nil || got.State != opsv1.ProposalState_PROPOSAL_STATE_EXECUTED || got.Result != "sign-g1 retired" {
			t.Fatalf("bob approves: %v, %v; want EXECUTED", got, err)
		}
		calls, by := e.ca.ran()
		want := ca.Approval{ProposalID: p.Id, Proposer: "alice", Approvers: []string{"alice", "bob"}}
		if !slices.Equal(calls, []string{"retire"}) || by[0].ProposalID != want.ProposalID || by[0].Proposer != want.Proposer || !slices.Equal(by[0].Approvers, want.Approvers) {
			t.Errorf("ran %v by %+v; want retire once by %+v", calls, by, want)
		}
		_, err = e.approve("carol", p.Id)
		wantCode(t, "approving an executed proposal", err, codes.FailedPrecondition, "is EXECUTED")
		if calls, _ := e.ca.ran(); len(calls) != 1 {
			t.Errorf("ran %v; want once", calls)
		}
		e.wantAudit(t, []string{"proposal.propose alice", "proposal.approve bob", "proposal.run bob", "proposal.result shomei-ca"})
	})
	t.Run("required 3: three distinct operators, nobody twice", func(t *testing.T) {
		e := newApprovalEnv(t, 3, nil)
		p := e.propose(t, "alice", retire(2))
		if got, err := e.approve("bob", p.Id); err != nil || got.State != opsv1.ProposalState_PROPOSAL_STATE_OPEN {
			t.Fatalf("bob approves: %v, %v; want still OPEN", got, err)
		}
		_, err := e.approve("bob", p.Id)
		wantCode(t, "bob again", err, codes.FailedPrecondition, "approved proposal "+p.Id+" already")
		if calls, _ := e.ca.ran(); len(calls) != 0 {
			t.Fatalf("ran %v with 2 of 3 approvals", calls)
		}
		got, err := e.approve("carol", p.Id)
		if err != nil || got.State != opsv1.ProposalState_PROPOSAL_STATE_EXECUTED || !slices.Equal(got.Approvers, []string{"alice", "bob", "carol"}) {
			t.Fatalf("carol approves: %v, %v", got, err)
		}
	})
	t.Run("expired: never runs", func(t *testing.T) {
		e := newApprovalEnv(t, 2, nil)
		p := e.propose(t, "alice", retire(1))
		e.clock.add(24*time.Hour - time.Second)
		list, err := e.ops["carol"].ListProposals(context.Background(), &opsv1.ListProposalsRequest{})
		if err != nil || list.Proposals[0].State != opsv1.ProposalState_PROPOSAL_STATE_OPEN {
			t.Fatalf("a second before expiry: %v, %v", list, err)
		}
		e.clock.add(time.Second)
		_, err = e.approve("bob", p.Id)
		wantCode(t, "approving at expiry", err, codes.FailedPrecondition, "is EXPIRED")
		list, err = e.ops["carol"].ListProposals(context.Background(), &opsv1.ListProposalsRequest{})
		if err != nil || list.Proposals[0].State != opsv1.ProposalState_PROPOSAL_STATE_EXPIRED {
			t.Fatalf("after expiry: %v, %v", list, err)
		}
		if calls, _ := e.ca.ran(); len(calls) != 0 {
			t.Errorf("an expired proposal ran: %v", calls)
		}
		e.wantAudit(t, []string{"proposal.propose alice", "proposal.expire shomei-ca"})
	})
	t.Run("a failed operation is FAILED with its error", func(t *testing.T) {
		e := newApprovalEnv(t, 2, nil)
		p := e.propose(t, "alice", &opsv1.Action{Action: &opsv1.Action_Destroy{Destroy: &opsv1.DestroyKey{Profile: opsv1.Profile_PROFILE_AUTH, Generation: 1}}})
		got, err := e.approve("bob", p.Id)
		if err != nil || got.State != opsv1.ProposalState_PROPOSAL_STATE_FAILED || got.Error != "the HSM refused" {
			t.Fatalf("bob approves: %v, %v; want FAILED", got, err)
		}
	})
}

// wantAudit fails unless the audit log's records are want ("action actor").
func (e *approvalEnv) wantAudit(t *testing.T, want []string) {
	t.Helper()
	var got []string
	if err := e.store.AuditRecords(func(r *storev1.AuditRecord) error {
		got = append(got, r.Action+" "+r.Actor)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit log %q, want %q", got, want)
	}
}

// TestProposeRefusals: a malformed request is InvalidArgument naming the
// field, a refusal of the CA keeps its code, and nothing is stored.
func TestProposeRefusals(t *testing.T) {
	e := newApprovalEnv(t, 2, nil)
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		req    *opsv1.ProposeRequest
		code   codes.Code
		saying string
	}{
		{"no action", &opsv1.ProposeRequest{Reason: "x"}, codes.InvalidArgument, "action"},
		{"no profile", &opsv1.ProposeRequest{Action: &opsv1.Action{Action: &opsv1.Action_Rotate{Rotate: &opsv1.RotateKey{}}}, Reason: "x"}, codes.InvalidArgument, "action.rotate.profile"},
		{"activation in a year and a week", &opsv1.ProposeRequest{Action: &opsv1.Action{Action: &opsv1.Action_Rotate{Rotate: &opsv1.RotateKey{Profile: opsv1.Profile_PROFILE_SIGN,
			ActivateAt: e.clock.now().AddDate(1, 0, 7).Format(time.RFC3339)}}}, Reason: "x"}, codes.InvalidArgument, "more than a year ahead"},
		{"generation 0", &opsv1.ProposeRequest{Action: retire(0), Reason: "x"}, codes.InvalidArgument, "action.retire.generation"},
		{"bad invalid_since", &opsv1.ProposeRequest{Action: &opsv1.Action{Action: &opsv1.Action_Compromise{Compromise: &opsv1.CompromiseKey{Profile: opsv1.Profile_PROFILE_SIGN,
			Generation: 1, InvalidSince: "yesterday"}}}, Reason: "x"}, codes.InvalidArgument, "action.compromise.invalid_since"},
		{"no reason", &opsv1.ProposeRequest{Action: retire(1)}, codes.InvalidArgument, "reason"},
		{"control character", &opsv1.ProposeRequest{Action: retire(1), Reason: "a\nb"}, codes.InvalidArgument, "reason"},
		{"reason too long", &opsv1.ProposeRequest{Action: retire(1), Reason: strings.Repeat("理", 257)}, codes.InvalidArgument, "reason"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.ops["alice"].Propose(ctx, c.req)
			wantCode(t, c.name, err, c.code, c.saying)
		})
	}
	if _, err := e.ops["alice"].Propose(ctx, &opsv1.ProposeRequest{Action: retire(1), Reason: strings.Repeat("理", 256)}); err != nil {
		t.Errorf("256 characters: %v", err)
	}
	e.ca.checkErr = &ca.Error{Kind: ca.KindPrecondition, Violations: []ca.Violation{{Field: "action.retire.generation", Rule: "R-K1", Description: "has unexpired certificates"}}}
	_, err := e.ops["alice"].Propose(ctx, &opsv1.ProposeRequest{Action: retire(1), Reason: "x"})
	wantCode(t, "the CA refuses", err, codes.FailedPrecondition, "unexpired")

	_, err = e.approve("bob", "0123456789abcdef")
	wantCode(t, "unknown id", err, codes.NotFound, "no such proposal")
	_, err = e.approve("bob", strings.Repeat("a", 65))
	wantCode(t, "long id", err, codes.InvalidArgument, "id")
	_, err = e.ops["bob"].ListProposals(ctx, &opsv1.ListProposalsRequest{Limit: 1001})
	wantCode(t, "limit", err, codes.InvalidArgument, "limit")
	_, err = e.ops["kiyose"].Propose(ctx, &opsv1.ProposeRequest{Action: retire(1), Reason: "x"})
	wantCode(t, "a municipal system", err, codes.PermissionDenied, "")
	if all, err := e.store.Proposals(0); err != nil || len(all) != 1 {
		t.Errorf("stored %d proposals, %v; want only the valid one", len(all), err)
	}
}

// watchCompromise has alice propose a compromise of SIGN generation 1 and
// carol watch it (for up to 30 s), and checks the watch shows it OPEN at
// once.
func (e *approvalEnv) watchCompromise(t *testing.T) (*opsv1.Proposal, grpc.ServerStreamingClient[opsv1.WatchProposalResponse]) {
	t.Helper()
	p := e.propose(t, "alice", &opsv1.Action{Action: &opsv1.Action_Compromise{Compromise: &opsv1.CompromiseKey{Profile: opsv1.Profile_PROFILE_SIGN, Generation: 1}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	w, err := e.ops["carol"].WatchProposal(ctx, &opsv1.WatchProposalRequest{Id: p.Id})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := w.Recv(); err != nil || first.Proposal.State != opsv1.ProposalState_PROPOSAL_STATE_OPEN {
		t.Fatalf("first message: %v, %v; want the proposal OPEN at once", first, err)
	}
	return p, w
}

// TestWatchCompromise: an approved compromise runs in the background;
// WatchProposal shows it at once, then its progress, and ends when it is
// EXECUTED.
func TestWatchCompromise(t *testing.T) {
	e := newApprovalEnv(t, 2, nil)
	p, w := e.watchCompromise(t)
	if _, err := e.approve("bob", p.Id); err != nil {
		t.Fatal(err)
	}
	var last *opsv1.Proposal
	for {
		m, err := w.Recv()
		if err != nil {
			if status.Code(err) != codes.OK && err.Error() != "EOF" {
				t.Fatalf("watch: %v", err)
			}
			break
		}
		last = m.Proposal
	}
	if last == nil || last.State != opsv1.ProposalState_PROPOSAL_STATE_EXECUTED || last.Done != 4 || last.Total != 4 ||
		last.GetAction().GetCompromise().GetInvalidSince() == "" {
		t.Errorf("last message %v; want EXECUTED, 4 of 4, invalid_since set at approval", last)
	}
}

// TestWatchEndsWhenTheCAStops: an operator's open WatchProposal stream
// ends with Unavailable as soon as the CA starts to stop, so that the
// CA's graceful stop does not wait out its timeout for it (issue 13).
func TestWatchEndsWhenTheCAStops(t *testing.T) {
	e := newApprovalEnv(t, 2, nil)
	_, w := e.watchCompromise(t)
	close(e.stopping)
	if m, err := w.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("after the CA started to stop: %v, %v; want the watch ended with Unavailable", m, err)
	}
}

// TestResumeAfterRestart: what a CA that stopped left RUNNING. A
// compromise is resumed; a retirement is not run again: the store shows it
// did not land, so it is FAILED.
func TestResumeAfterRestart(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2027, 4, 1, 9, 0, 0, 0, time.UTC)
	for id, kind := range map[string]storev1.ProposalKind{"c0ffee0000000001": storev1.ProposalKind_PROPOSAL_KIND_COMPROMISE,
		"c0ffee0000000002": storev1.ProposalKind_PROPOSAL_KIND_RETIRE} {
		err := st.CreateProposal(&storev1.Proposal{Id: id, Kind: kind, Profile: storev1.Profile_PROFILE_SIGN, Generation: 1,
			Proposer: "alice", Approvers: []string{"alice", "bob"}, Required: 2, State: storev1.ProposalState_PROPOSAL_STATE_RUNNING,
			CreatedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(time.Hour)), InvalidSince: timestamppb.New(now)},
			[]*storev1.AuditRecord{{Actor: "test", Action: "test.seed"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	e := newApprovalEnv(t, 2, st)
	e.cancel() // Run resumed, then stopped: what it started has finished.
	calls, _ := e.ca.ran()
	if !slices.Equal(calls, []string{"compromise"}) {
		t.Errorf("ran %v; want the compromise resumed, nothing else", calls)
	}
	for id, want := range map[string]storev1.ProposalState{"c0ffee0000000001": storev1.ProposalState_PROPOSAL_STATE_EXECUTED,
		"c0ffee0000000002": storev1.ProposalState_PROPOSAL_STATE_FAILED} {
		if p, err := st.Proposal(id); err != nil || p.State != want {
			t.Errorf("%s: %v, %v; want %v", id, p.GetState(), err, want)
		}
	}
}
