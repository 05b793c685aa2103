package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
)

// Running approved proposals. A rotation, retirement or destruction runs
// in the Approve call that completed its approvals; an issuer compromise
// runs in the background under the CA's lifetime (Run), batch by batch,
// its progress saved in the proposal after each batch. A proposal is
// RUNNING from the transaction of its last approval on, so a CA that stops
// while one runs finds it at its next start (Run): a compromise is resumed
// where it stopped (it revokes nothing twice); any other is checked
// against the store, never run a second time.

// expirySweep is how often Run expires the proposals nobody reads.
const expirySweep = time.Minute

// Run takes up the proposals a previous process left RUNNING, runs the
// compromises approved from now on, and expires open proposals on time,
// until ctx (the CA's lifetime) ends; then it waits for the running
// compromises to stop after their current batch. The CA calls it once,
// in the background, when it starts.
func (a *Approvals) Run(ctx context.Context) {
	a.mu.Lock()
	a.life = ctx
	a.mu.Unlock()
	a.resume(ctx)
	t := time.NewTicker(expirySweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			a.wg.Wait()
			return
		case <-t.C:
			a.sweep()
		}
	}
}

// resume takes up every RUNNING proposal this process is not running.
func (a *Approvals) resume(ctx context.Context) {
	all, err := a.store.Proposals(0)
	if err != nil {
		a.log.Error("reading the proposals to resume", "error", err)
		return
	}
	for _, p := range all {
		if p.State != storev1.ProposalState_PROPOSAL_STATE_RUNNING || !a.claim(p.Id) {
			continue
		}
		if p.Kind == storev1.ProposalKind_PROPOSAL_KIND_COMPROMISE {
			a.log.Warn("resuming an issuer compromise the previous process did not finish (R-K2)", "proposal", p.Id)
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.compromise(ctx, p)
			}()
			continue
		}
		a.settle(p)
	}
}

// sweep expires the open proposals past their expiry.
func (a *Approvals) sweep() {
	all, err := a.store.Proposals(0)
	if err != nil {
		a.log.Error("reading the proposals to expire", "error", err)
		return
	}
	for _, p := range all {
		if _, err := a.expireIfDue(p); err != nil {
			a.log.Error("expiring a proposal", "proposal", p.Id, "error", err)
		}
	}
}

// claim marks proposal id as run by this process; false if it is already.
func (a *Approvals) claim(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running[id] {
		return false
	}
	a.running[id] = true
	return true
}

func (a *Approvals) release(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.running, id)
}

// start runs p, just made RUNNING: a rotation, retirement or destruction
// to its end, returning the decided proposal; a compromise in the
// background (once Run has started; before, Run resumes it), returning p.
func (a *Approvals) start(p *storev1.Proposal) *storev1.Proposal {
	compromise := p.Kind == storev1.ProposalKind_PROPOSAL_KIND_COMPROMISE
	a.mu.Lock()
	life := a.life
	if a.running[p.Id] || (compromise && life == nil) {
		// Running already, or Run, not started yet, will resume it.
		a.mu.Unlock()
		return p
	}
	a.running[p.Id] = true
	a.mu.Unlock()
	if compromise {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.compromise(life, p)
		}()
		return p
	}
	defer a.release(p.Id)
	// The operation finishes even if the approver hangs up.
	ctx := context.Background()
	if life != nil {
		ctx = context.WithoutCancel(life)
	}
	by := approvalOf(p)
	var result string
	var err error
	switch p.Kind {
	case storev1.ProposalKind_PROPOSAL_KIND_ROTATE:
		a.rotating.Lock()
		defer a.rotating.Unlock()
		var key *storev1.IssuerKey
		var newest uint32
		if newest, err = a.newestGeneration(p.Profile); err == nil {
			err = staleRotation(p, newest)
		}
		if err != nil {
			break
		}
		if key, err = a.ca.Rotate(ctx, p.Profile, timeOf(p.ActivateAt), by); err == nil {
			result = ca.IssuerName(p.Profile, key.GetGeneration()) + " made"
			if p.ActivateAt != nil {
				result += ", active from " + stamp(p.ActivateAt)
			}
		}
	case storev1.ProposalKind_PROPOSAL_KIND_RETIRE:
		if err = a.ca.Retire(ctx, p.Profile, p.Generation, by); err == nil {
			result = ca.IssuerName(p.Profile, p.Generation) + " retired"
		}
	case storev1.ProposalKind_PROPOSAL_KIND_DESTROY:
		if err = a.ca.Destroy(ctx, p.Profile, p.Generation, by); err == nil {
			result = ca.IssuerName(p.Profile, p.Generation) + "'s key destroyed"
		}
	default:
		err = fmt.Errorf("ops: proposal kind %v", p.Kind)
	}
	return a.finish(p, result, err)
}

// compromise runs (or resumes) p's issuer compromise, saving its progress
// after every batch. When ctx ends first, p stays RUNNING for the next
// start.
func (a *Approvals) compromise(ctx context.Context, p *storev1.Proposal) {
	defer a.release(p.Id)
	name := ca.IssuerName(p.Profile, p.Generation)
	progress := func(done, total uint64) {
		_, err := a.store.UpdateProposal(p.Id, func(q *storev1.Proposal) ([]*storev1.AuditRecord, error) {
			q.Done, q.Total = done, total
			q.Result = fmt.Sprintf("%s compromised: revoked %d of %d", name, done, total)
			return nil, nil
		})
		if err != nil {
			a.log.Error("saving the progress of a compromise", "proposal", p.Id, "error", err)
		}
		a.notify()
	}
	res, err := a.ca.Compromise(ctx, p.Profile, p.Generation, timeOf(p.InvalidSince), approvalOf(p), progress)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		a.log.Warn("the CA stops: the issuer compromise goes on at its next start", "proposal", p.Id)
		return
	}
	result := ""
	if err == nil {
		result = fmt.Sprintf("%s compromised: %d certificates revoked (cACompromise), %d were revoked before", name, res.Revoked, res.AlreadyRevoked)
	}
	a.finish(p, result, err)
}

// settle decides a rotation, retirement or destruction found RUNNING at
// start: the process that ran it stopped. It is never run again: what the
// store shows says whether it landed.
func (a *Approvals) settle(p *storev1.Proposal) {
	defer a.release(p.Id)
	keys, err := a.store.Issuers()
	if err != nil {
		a.log.Error("reading the issuers to settle a proposal", "proposal", p.Id, "error", err)
		return
	}
	var landed string
	for _, k := range keys {
		if k.Profile != p.Profile {
			continue
		}
		switch {
		case p.Kind == storev1.ProposalKind_PROPOSAL_KIND_ROTATE && k.Generation > p.BaselineGeneration:
			landed = ca.IssuerName(p.Profile, k.Generation) + " made"
		case p.Kind == storev1.ProposalKind_PROPOSAL_KIND_RETIRE && k.Generation == p.Generation &&
			(k.State == storev1.KeyState_KEY_STATE_RETIRED || k.State == storev1.KeyState_KEY_STATE_DESTROYED):
			landed = ca.IssuerName(p.Profile, k.Generation) + " retired"
		case p.Kind == storev1.ProposalKind_PROPOSAL_KIND_DESTROY && k.Generation == p.Generation && k.State == storev1.KeyState_KEY_STATE_DESTROYED:
			landed = ca.IssuerName(p.Profile, k.Generation) + "'s key destroyed"
		}
	}
	if landed != "" {
		a.finish(p, landed+" (found done after the CA restarted)", nil)
		return
	}
	a.finish(p, "", errors.New("the CA stopped while it ran and the store shows it did not happen; nothing was done: propose it again"))
}

// finish records p's outcome: EXECUTED with result, or FAILED with err.
func (a *Approvals) finish(p *storev1.Proposal, result string, runErr error) *storev1.Proposal {
	now := a.now()
	q, err := a.store.UpdateProposal(p.Id, func(q *storev1.Proposal) ([]*storev1.AuditRecord, error) {
		q.DecidedAt = timestamppb.New(now)
		var extra *storev1.AuditField
		if runErr != nil {
			q.State, q.Error = storev1.ProposalState_PROPOSAL_STATE_FAILED, failure(runErr)
			extra = &storev1.AuditField{Key: "error", Value: q.Error}
		} else {
			q.State, q.Result = storev1.ProposalState_PROPOSAL_STATE_EXECUTED, result
			extra = &storev1.AuditField{Key: "result", Value: result}
		}
		return []*storev1.AuditRecord{a.record(now, a.actor, "proposal.result", q,
			&storev1.AuditField{Key: "state", Value: stateName(q.State)}, extra)}, nil
	})
	if err != nil {
		a.log.Error("recording the outcome of a proposal", "proposal", p.Id, "error", err)
		return p
	}
	if runErr != nil {
		a.log.Error("approved key operation failed", "proposal", p.Id, "kind", p.Kind.String(), "error", runErr)
	} else {
		a.log.Info("approved key operation done", "proposal", p.Id, "kind", p.Kind.String())
	}
	a.notify()
	return q
}

// failure is what FAILED says: a refusal's text, or the error's.
func failure(err error) string {
	var e *ca.Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return err.Error()
}

// approvalOf is who asked for p and who agreed.
func approvalOf(p *storev1.Proposal) ca.Approval {
	return ca.Approval{ProposalID: p.Id, Proposer: p.Proposer, Approvers: append([]string(nil), p.Approvers...)}
}

// newestGeneration is p's newest generation number in the store.
func (a *Approvals) newestGeneration(p storev1.Profile) (uint32, error) {
	keys, err := a.store.Issuers()
	if err != nil {
		return 0, err
	}
	var g uint32
	for _, k := range keys {
		if k.Profile == p {
			g = max(g, k.Generation)
		}
	}
	return g, nil
}
