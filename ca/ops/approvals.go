package ops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/service"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/internal/config"
)

// Approvals answers for proposals: Propose, ListProposals, Approve,
// WatchProposal. A proposal is stored OPEN with the proposer's approval;
// the approval that makes it reach the required count also makes it
// RUNNING, in the same transaction; it then runs (approvals_run.go) and
// ends EXECUTED or FAILED. An OPEN proposal past its expiry becomes
// EXPIRED when next read (or by Run's sweep) and never runs. Every step is
// in the audit log (R-K3) with the operators' names.
type Approvals struct {
	store       ProposalStore
	ca          KeyOperator
	required    int
	expireAfter time.Duration
	now         func() time.Time
	log         *slog.Logger
	actor       string

	// rotating holds a rotation's check of its baseline and its run
	// together, so that two rotations approved at once do not both run.
	rotating sync.Mutex

	mu       sync.Mutex
	life     context.Context // the CA's lifetime, once Run started
	running  map[string]bool // proposals running in this process
	changed  chan struct{}   // closed and replaced at every change
	watch    chan struct{}   // a token per WatchProposal stream open
	stopping <-chan struct{} // ApprovalsConfig.Stopping
	wg       sync.WaitGroup
}

// KeyOperator is what approved proposals run: *ca.CA.
type KeyOperator interface {
	CheckRotate(p ca.Profile, activateAt time.Time) error
	Rotate(ctx context.Context, p ca.Profile, activateAt time.Time, by ca.Approval) (*storev1.IssuerKey, error)
	CheckRetire(p ca.Profile, generation uint32) error
	Retire(ctx context.Context, p ca.Profile, generation uint32, by ca.Approval) error
	CheckDestroy(p ca.Profile, generation uint32) error
	Destroy(ctx context.Context, p ca.Profile, generation uint32, by ca.Approval) error
	CheckCompromise(p ca.Profile, generation uint32, invalidSince time.Time) error
	Compromise(ctx context.Context, p ca.Profile, generation uint32, invalidSince time.Time, by ca.Approval,
		progress func(done, total uint64)) (*store.CompromiseResult, error)
}

// ProposalStore keeps the proposals and tells what landed: *store.Store.
type ProposalStore interface {
	CreateProposal(p *storev1.Proposal, audit []*storev1.AuditRecord) error
	Proposal(id string) (*storev1.Proposal, error)
	Proposals(limit int) ([]*storev1.Proposal, error)
	UpdateProposal(id string, fn func(p *storev1.Proposal) ([]*storev1.AuditRecord, error)) (*storev1.Proposal, error)
	Issuers() ([]*storev1.IssuerKey, error)
}

var (
	_ KeyOperator   = (*ca.CA)(nil)
	_ ProposalStore = (*store.Store)(nil)
)

// ApprovalsConfig is what Approvals needs.
type ApprovalsConfig struct {
	// Store keeps the proposals: the CA's store.
	Store ProposalStore
	// CA checks and runs the operations.
	CA KeyOperator
	// Approvals: how many operators must agree and how long a proposal
	// waits (zero fields: config's defaults, 2 and 24h).
	Approvals config.Approvals
	// Now is the clock expiry is judged by; time.Now when nil.
	Now func() time.Time
	// Log gets operational messages; slog.Default when nil.
	Log *slog.Logger
	// Actor names the CA in the audit records it writes itself (expiry,
	// results); "shomei-ca" when empty.
	Actor string
	// Stopping, when set, is closed when the CA starts to stop: every
	// WatchProposal stream then ends with Unavailable (the operator
	// watches again when the CA is back), so that a graceful stop does
	// not wait out its timeout for an operator's open watch.
	Stopping <-chan struct{}
}

// NewApprovals makes the Approvals part. Proposals left RUNNING by a
// previous process are taken up by Run.
func NewApprovals(cfg ApprovalsConfig) (*Approvals, error) {
	if cfg.Store == nil || cfg.CA == nil {
		return nil, errors.New("ops: approvals need a store and the CA")
	}
	ap := cfg.Approvals.WithDefaults()
	if ap.Required < 1 || ap.Required > config.MaxApprovalsRequired || ap.ExpireAfter <= 0 {
		return nil, fmt.Errorf("ops: approvals: required %d (1 to %d), expire_after %v (positive)", ap.Required, config.MaxApprovalsRequired, ap.ExpireAfter)
	}
	a := &Approvals{store: cfg.Store, ca: cfg.CA, required: ap.Required, expireAfter: ap.ExpireAfter, now: cfg.Now, log: cfg.Log,
		actor: cfg.Actor, running: map[string]bool{}, changed: make(chan struct{}),
		watch: make(chan struct{}, maxWatchers), stopping: cfg.Stopping}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.actor == "" {
		a.actor = "shomei-ca"
	}
	return a, nil
}

// Limits of the requests.
const (
	maxReason        = 256
	defaultListLimit = 50
	maxListLimit     = 1000
	// maxWatchers bounds the WatchProposal streams open at once, all
	// operators together: each is held for up to a proposal's life and
	// reads the store at every change of any proposal.
	maxWatchers = 64
	// watchEvery is the least time between two messages of WatchProposal.
	watchEvery = 250 * time.Millisecond
)

// Propose implements opsv1.OperationsServer.
func (a *Approvals) Propose(ctx context.Context, req *opsv1.ProposeRequest) (*opsv1.ProposeResponse, error) {
	op, err := Operator(ctx)
	if err != nil {
		return nil, err
	}
	now := a.now()
	p, vs := parseAction(req.GetAction(), now)
	checkReason(&vs, req.GetReason())
	if len(vs) > 0 {
		return nil, a.refusal(&ca.Error{Kind: ca.KindInvalid, Violations: vs})
	}
	if err := a.check(p); err != nil {
		return nil, a.refusal(err)
	}
	if p.Kind == storev1.ProposalKind_PROPOSAL_KIND_ROTATE {
		// What the approvers agree to is replacing this generation: once
		// another is made, the proposal is stale (R-K1).
		if p.BaselineGeneration, err = a.newestGeneration(p.Profile); err != nil {
			return nil, a.refusal(err)
		}
	}
	id, err := newProposalID()
	if err != nil {
		return nil, a.refusal(err)
	}
	p.Id, p.Reason, p.Proposer, p.Approvers = id, req.GetReason(), op, []string{op}
	p.Required, p.State = uint32(a.required), storev1.ProposalState_PROPOSAL_STATE_OPEN
	p.CreatedAt, p.ExpiresAt = timestamppb.New(now), timestamppb.New(now.Add(a.expireAfter))
	audit := []*storev1.AuditRecord{a.record(now, op, "proposal.propose", p,
		&storev1.AuditField{Key: "reason", Value: p.Reason}, &storev1.AuditField{Key: "expires_at", Value: stamp(p.ExpiresAt)})}
	if len(p.Approvers) >= int(p.Required) {
		audit = append(audit, a.markRunning(p, now, op))
	}
	if err := a.store.CreateProposal(p, audit); err != nil {
		return nil, a.refusal(err)
	}
	a.log.Info("key operation proposed", "proposal", p.Id, "kind", p.Kind.String(), "operator", op)
	a.notify()
	if p.State == storev1.ProposalState_PROPOSAL_STATE_RUNNING {
		p = a.start(p)
	}
	return &opsv1.ProposeResponse{Proposal: toProto(p)}, nil
}

// check runs the CA's own check of the action now.
func (a *Approvals) check(p *storev1.Proposal) error {
	switch p.Kind {
	case storev1.ProposalKind_PROPOSAL_KIND_ROTATE:
		return a.ca.CheckRotate(p.Profile, timeOf(p.ActivateAt))
	case storev1.ProposalKind_PROPOSAL_KIND_RETIRE:
		return a.ca.CheckRetire(p.Profile, p.Generation)
	case storev1.ProposalKind_PROPOSAL_KIND_DESTROY:
		return a.ca.CheckDestroy(p.Profile, p.Generation)
	case storev1.ProposalKind_PROPOSAL_KIND_COMPROMISE:
		return a.ca.CheckCompromise(p.Profile, p.Generation, timeOf(p.InvalidSince))
	}
	return fmt.Errorf("ops: proposal kind %v", p.Kind)
}

// ListProposals implements opsv1.OperationsServer.
func (a *Approvals) ListProposals(ctx context.Context, req *opsv1.ListProposalsRequest) (*opsv1.ListProposalsResponse, error) {
	if _, err := Operator(ctx); err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	if limit > maxListLimit {
		return nil, a.refusal(&ca.Error{Kind: ca.KindInvalid, Violations: []ca.Violation{{Field: "limit", Rule: "R-K3",
			Description: fmt.Sprintf("at most %d (0: %d)", maxListLimit, defaultListLimit)}}})
	}
	if limit == 0 {
		limit = defaultListLimit
	}
	all, err := a.store.Proposals(limit)
	if err != nil {
		return nil, a.refusal(err)
	}
	out := &opsv1.ListProposalsResponse{}
	for _, p := range all {
		if p, err = a.expireIfDue(p); err != nil {
			return nil, a.refusal(err)
		}
		out.Proposals = append(out.Proposals, toProto(p))
	}
	return out, nil
}

// Approve implements opsv1.OperationsServer.
func (a *Approvals) Approve(ctx context.Context, req *opsv1.ApproveRequest) (*opsv1.ApproveResponse, error) {
	op, err := Operator(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkID(req.GetId()); err != nil {
		return nil, a.refusal(err)
	}
	p, err := a.current(req.GetId())
	if err != nil {
		return nil, a.refusal(err)
	}
	var baseline uint32
	if p.Kind == storev1.ProposalKind_PROPOSAL_KIND_ROTATE {
		if baseline, err = a.newestGeneration(p.Profile); err != nil {
			return nil, a.refusal(err)
		}
	}
	now := a.now()
	var refused error
	p, err = a.store.UpdateProposal(p.Id, func(p *storev1.Proposal) ([]*storev1.AuditRecord, error) {
		if refused = approvable(p, op, now); refused != nil {
			return nil, refused
		}
		if refused = staleRotation(p, baseline); refused != nil {
			return nil, refused
		}
		p.Approvers = append(p.Approvers, op)
		audit := []*storev1.AuditRecord{a.record(now, op, "proposal.approve", p,
			&storev1.AuditField{Key: "approvals", Value: fmt.Sprintf("%d of %d", len(p.Approvers), p.Required)})}
		if len(p.Approvers) >= int(p.Required) && p.BaselineGeneration == 0 {
			p.BaselineGeneration = baseline // proposed before baselines were kept
		}
		if len(p.Approvers) >= int(p.Required) {
			audit = append(audit, a.markRunning(p, now, op))
		}
		return audit, nil
	})
	if refused != nil {
		return nil, a.refusal(refused)
	}
	if err != nil {
		return nil, a.refusal(err)
	}
	a.log.Info("key operation approved", "proposal", p.Id, "operator", op, "approvals", len(p.Approvers), "required", p.Required)
	a.notify()
	if p.State == storev1.ProposalState_PROPOSAL_STATE_RUNNING {
		p = a.start(p)
	}
	return &opsv1.ApproveResponse{Proposal: toProto(p)}, nil
}

// approvable refuses op's approval of p at now.
func approvable(p *storev1.Proposal, op string, now time.Time) error {
	pre := func(format string, args ...any) error {
		return &ca.Error{Kind: ca.KindPrecondition, Violations: []ca.Violation{{Field: "id", Rule: ruleOf(p.Kind), Description: fmt.Sprintf(format, args...)}}}
	}
	switch {
	case p.State != storev1.ProposalState_PROPOSAL_STATE_OPEN:
		return pre("proposal %s is %s: only an open proposal can be approved", p.Id, stateName(p.State))
	case !now.Before(p.ExpiresAt.AsTime()):
		return pre("proposal %s expired at %s: propose it again", p.Id, stamp(p.ExpiresAt))
	case samePerson(op, p.Proposer):
		return pre("the proposer cannot approve their own proposal: another operator must")
	}
	for _, who := range p.Approvers {
		if samePerson(who, op) {
			return pre("%s approved proposal %s already: another operator must", op, p.Id)
		}
	}
	return nil
}

// staleRotation refuses a rotation proposed when its profile's newest
// generation was another than newest, the newest now (R-K1): approving it
// would replace a key made after the proposal, which nobody agreed to.
func staleRotation(p *storev1.Proposal, newest uint32) error {
	if p.Kind != storev1.ProposalKind_PROPOSAL_KIND_ROTATE || p.BaselineGeneration == 0 || p.BaselineGeneration == newest {
		return nil
	}
	return &ca.Error{Kind: ca.KindPrecondition, Violations: []ca.Violation{{Field: "id", Rule: "R-K1", Description: fmt.Sprintf(
		"proposal %s rotates %s, but %s was made since: it is stale; propose it again", p.Id,
		ca.IssuerName(p.Profile, p.BaselineGeneration), ca.IssuerName(p.Profile, newest))}}}
}

// markRunning makes p RUNNING at now, by op's approval, and returns the
// audit record of it.
func (a *Approvals) markRunning(p *storev1.Proposal, now time.Time, op string) *storev1.AuditRecord {
	p.State, p.ApprovedAt, p.Result = storev1.ProposalState_PROPOSAL_STATE_RUNNING, timestamppb.New(now), "running"
	if p.Kind == storev1.ProposalKind_PROPOSAL_KIND_COMPROMISE && p.InvalidSince == nil {
		p.InvalidSince = timestamppb.New(now)
	}
	return a.record(now, op, "proposal.run", p)
}

// WatchProposal implements opsv1.OperationsServer.
func (a *Approvals) WatchProposal(req *opsv1.WatchProposalRequest, stream grpc.ServerStreamingServer[opsv1.WatchProposalResponse]) error {
	ctx := stream.Context()
	if _, err := Operator(ctx); err != nil {
		return err
	}
	if err := checkID(req.GetId()); err != nil {
		return a.refusal(err)
	}
	select {
	case a.watch <- struct{}{}:
		defer func() { <-a.watch }()
	default:
		return status.Errorf(codes.ResourceExhausted, "%d proposals are being watched already: try again later, or ListProposals", maxWatchers)
	}
	var last *storev1.Proposal
	for {
		changed := a.changes()
		p, err := a.current(req.GetId())
		if err != nil {
			return a.refusal(err)
		}
		if !proto.Equal(p, last) {
			if err := stream.Send(&opsv1.WatchProposalResponse{Proposal: toProto(p)}); err != nil {
				return err
			}
			last = p
		}
		if decided(p.State) {
			return nil
		}
		if err := a.waitChange(ctx, p, changed); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-a.stopping:
			return errStopping
		case <-time.After(watchEvery):
		}
	}
}

// waitChange waits for a change of any proposal, p's expiry (an open
// one), or the end of ctx.
func (a *Approvals) waitChange(ctx context.Context, p *storev1.Proposal, changed <-chan struct{}) error {
	var expiry <-chan time.Time
	if p.State == storev1.ProposalState_PROPOSAL_STATE_OPEN {
		t := time.NewTimer(max(0, p.ExpiresAt.AsTime().Sub(a.now())))
		defer t.Stop()
		expiry = t.C
	}
	select {
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-a.stopping: // nil when unset: never ready
		return errStopping
	case <-changed:
	case <-expiry:
	}
	return nil
}

// errStopping ends a WatchProposal stream when the CA stops.
var errStopping = status.Error(codes.Unavailable, "the CA is stopping; watch the proposal again when it is back")

// current reads proposal id, expiring it first if it is due.
func (a *Approvals) current(id string) (*storev1.Proposal, error) {
	p, err := a.store.Proposal(id)
	if err != nil {
		return nil, err
	}
	return a.expireIfDue(p)
}

// expireIfDue records that p expired, if it is OPEN and past its expiry.
func (a *Approvals) expireIfDue(p *storev1.Proposal) (*storev1.Proposal, error) {
	now := a.now()
	if p.State != storev1.ProposalState_PROPOSAL_STATE_OPEN || now.Before(p.ExpiresAt.AsTime()) {
		return p, nil
	}
	expired := false
	q, err := a.store.UpdateProposal(p.Id, func(p *storev1.Proposal) ([]*storev1.AuditRecord, error) {
		expired = p.State == storev1.ProposalState_PROPOSAL_STATE_OPEN && !now.Before(p.ExpiresAt.AsTime())
		if !expired {
			return nil, nil
		}
		p.State, p.DecidedAt = storev1.ProposalState_PROPOSAL_STATE_EXPIRED, timestamppb.New(now)
		return []*storev1.AuditRecord{a.record(now, a.actor, "proposal.expire", p,
			&storev1.AuditField{Key: "approvals", Value: fmt.Sprintf("%d of %d", len(p.Approvers), p.Required)})}, nil
	})
	if err != nil {
		return nil, err
	}
	if expired {
		a.log.Info("proposal expired without enough approvals", "proposal", p.Id)
		a.notify()
	}
	return q, nil
}

// notify wakes every watcher.
func (a *Approvals) notify() {
	a.mu.Lock()
	defer a.mu.Unlock()
	close(a.changed)
	a.changed = make(chan struct{})
}

// changes is closed at the next change.
func (a *Approvals) changes() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}

// refusal maps an error onto the gRPC status the operator sees: a
// *ca.Error through service.StatusError (the one mapping), a missing
// proposal NotFound, anything else Internal.
func (a *Approvals) refusal(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		err = &ca.Error{Kind: ca.KindNotFound, Err: err, Violations: []ca.Violation{{Field: "id", Rule: "R-K1", Description: "no such proposal"}}}
	}
	return service.StatusError(a.log, err)
}

// record is an audit record of a step of p by actor (R-K3).
func (a *Approvals) record(now time.Time, actor, action string, p *storev1.Proposal, extra ...*storev1.AuditField) *storev1.AuditRecord {
	fields := append([]*storev1.AuditField{{Key: "proposal", Value: p.Id}, {Key: "kind", Value: p.Kind.String()},
		{Key: "profile", Value: p.Profile.String()}, {Key: "generation", Value: fmt.Sprint(p.Generation)},
		{Key: "proposer", Value: p.Proposer}, {Key: "approvers", Value: joinNames(p.Approvers)}}, extra...)
	return &storev1.AuditRecord{Time: timestamppb.New(now), Actor: actor, Action: action, Fields: fields}
}

// newProposalID is 16 random hex digits.
func newProposalID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
