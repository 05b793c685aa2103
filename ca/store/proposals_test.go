package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// testProposal is an OPEN rotation of SIGN proposed at created.
func testProposal(id string, created time.Time) *storev1.Proposal {
	return &storev1.Proposal{Id: id, Kind: storev1.ProposalKind_PROPOSAL_KIND_ROTATE, Profile: sign, Reason: "yearly",
		Proposer: "operator-1", Approvers: []string{"operator-1"}, Required: 2, State: storev1.ProposalState_PROPOSAL_STATE_OPEN,
		CreatedAt: timestamppb.New(created), ExpiresAt: timestamppb.New(created.Add(24 * time.Hour))}
}

// TestProposals (R-K1, R-K2, R-K3): a proposal of a key operation is kept
// with its audit records, written in the same transaction; an id is used
// once; a refused create or update writes nothing; proposals list newest
// first and survive a restart.
func TestProposals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTest(t, be)
		p1 := testProposal("p1", testNow)
		if err := s.CreateProposal(p1, []*storev1.AuditRecord{testAudit("proposal.create", "proposal", "p1")}); err != nil {
			t.Fatal(err)
		}

		refused := []struct {
			name    string
			p       *storev1.Proposal
			audit   []*storev1.AuditRecord
			wantErr error
			wantIn  string
		}{
			{"id in use", func() *storev1.Proposal { p := testProposal("p1", testNow); p.Reason = "another"; return p }(),
				[]*storev1.AuditRecord{testAudit("proposal.create")}, ErrProposalExists, "p1"},
			{"nil", nil, []*storev1.AuditRecord{testAudit("proposal.create")}, ErrInvalidArgument, "proposal is nil"},
			{"no id", testProposal("", testNow), []*storev1.AuditRecord{testAudit("proposal.create")}, ErrInvalidArgument, "proposal id must be"},
			{"id too long", testProposal(strings.Repeat("x", MaxProposalID+1), testNow), []*storev1.AuditRecord{testAudit("proposal.create")},
				ErrInvalidArgument, "proposal id must be"},
			{"no kind", func() *storev1.Proposal { p := testProposal("p9", testNow); p.Kind = 0; return p }(),
				[]*storev1.AuditRecord{testAudit("proposal.create")}, ErrInvalidArgument, "kind is not set"},
			{"no proposer", func() *storev1.Proposal { p := testProposal("p9", testNow); p.Proposer = ""; return p }(),
				[]*storev1.AuditRecord{testAudit("proposal.create")}, ErrInvalidArgument, "proposer"},
			{"no audit record", testProposal("p9", testNow), nil, ErrInvalidArgument, "at least one audit record"},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				before := auditCount(t, s)
				err := s.CreateProposal(tt.p, tt.audit)
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantIn) {
					t.Fatalf("CreateProposal: %v, want %v mentioning %q", err, tt.wantErr, tt.wantIn)
				}
				if n := auditCount(t, s); n != before {
					t.Errorf("a refused CreateProposal wrote %d audit records", n-before)
				}
				if all, err := s.Proposals(0); err != nil || len(all) != 1 || !proto.Equal(all[0], p1) {
					t.Errorf("after a refused CreateProposal: %v, %v; want only p1 as created", all, err)
				}
			})
		}
		if _, err := s.Proposal("nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Proposal(nope): %v, want ErrNotFound", err)
		}

		// Newest first, by creation time, then id.
		later := testNow.Add(time.Hour)
		for _, id := range []string{"p2", "p3"} {
			if err := s.CreateProposal(testProposal(id, later), []*storev1.AuditRecord{testAudit("proposal.create", "proposal", id)}); err != nil {
				t.Fatal(err)
			}
		}
		ids := func(ps []*storev1.Proposal) []string {
			var out []string
			for _, p := range ps {
				out = append(out, p.Id)
			}
			return out
		}
		if all, err := s.Proposals(0); err != nil || !slices.Equal(ids(all), []string{"p3", "p2", "p1"}) {
			t.Errorf("Proposals(0) = %v, %v; want p3 p2 p1", ids(all), err)
		}
		if two, err := s.Proposals(2); err != nil || !slices.Equal(ids(two), []string{"p3", "p2"}) {
			t.Errorf("Proposals(2) = %v, %v; want p3 p2", ids(two), err)
		}

		// A refused update writes nothing.
		fnErr := errors.New("not an approver")
		badUpdates := []struct {
			name    string
			fn      func(p *storev1.Proposal) ([]*storev1.AuditRecord, error)
			wantErr error
		}{
			{"the function refuses", func(p *storev1.Proposal) ([]*storev1.AuditRecord, error) {
				p.State = storev1.ProposalState_PROPOSAL_STATE_RUNNING
				return []*storev1.AuditRecord{testAudit("proposal.approve")}, fnErr
			}, fnErr},
			{"the id changes", func(p *storev1.Proposal) ([]*storev1.AuditRecord, error) {
				p.Id = "p4"
				return []*storev1.AuditRecord{testAudit("proposal.approve")}, nil
			}, ErrInvalidArgument},
			{"the state is cleared", func(p *storev1.Proposal) ([]*storev1.AuditRecord, error) {
				p.State = 0
				return []*storev1.AuditRecord{testAudit("proposal.approve")}, nil
			}, ErrInvalidArgument},
			{"an audit record is invalid", func(p *storev1.Proposal) ([]*storev1.AuditRecord, error) {
				p.State = storev1.ProposalState_PROPOSAL_STATE_RUNNING
				return []*storev1.AuditRecord{{Actor: "operator-2"}}, nil
			}, ErrInvalidArgument},
		}
		for _, tt := range badUpdates {
			t.Run(tt.name, func(t *testing.T) {
				before := auditCount(t, s)
				if _, err := s.UpdateProposal("p1", tt.fn); !errors.Is(err, tt.wantErr) {
					t.Fatalf("UpdateProposal: %v, want %v", err, tt.wantErr)
				}
				if got, err := s.Proposal("p1"); err != nil || !proto.Equal(got, p1) {
					t.Errorf("after a refused update: %v, %v; want p1 as created", got, err)
				}
				if n := auditCount(t, s); n != before {
					t.Errorf("a refused update wrote %d audit records", n-before)
				}
			})
		}
		if _, err := s.UpdateProposal("nope", func(*storev1.Proposal) ([]*storev1.AuditRecord, error) { return nil, nil }); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateProposal(nope): %v, want ErrNotFound", err)
		}

		// Concurrent approvals share transactions (batch.go) and lose none:
		// each reads the record as the one before it left it.
		const approvers = 8
		var wg sync.WaitGroup
		errs := make(chan error, approvers)
		for i := range approvers {
			wg.Go(func() {
				name := fmt.Sprintf("operator-%d", i+2)
				_, err := s.UpdateProposal("p2", func(p *storev1.Proposal) ([]*storev1.AuditRecord, error) {
					p.Approvers = append(p.Approvers, name)
					return []*storev1.AuditRecord{testAudit("proposal.approve", "proposal", "p2", "approver", name)}, nil
				})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("approval: %v", err)
			}
		}
		got, err := s.Proposal("p2")
		if err != nil || len(got.Approvers) != 1+approvers {
			t.Fatalf("after %d concurrent approvals: %v, %v; want every approver recorded", approvers, got.GetApprovers(), err)
		}

		out, err := s.UpdateProposal("p1", func(p *storev1.Proposal) ([]*storev1.AuditRecord, error) {
			p.Approvers = append(p.Approvers, "operator-2")
			p.State, p.ApprovedAt = storev1.ProposalState_PROPOSAL_STATE_RUNNING, timestamppb.New(later)
			return []*storev1.AuditRecord{testAudit("proposal.approve", "proposal", "p1")}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		wantAudit := 3 + approvers + 1
		if n, err := s.VerifyAudit(); err != nil || n != wantAudit {
			t.Errorf("VerifyAudit = %d, %v; want %d, nil", n, err, wantAudit)
		}

		// Kept across a restart.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openTest(t, be)
		if got, err := s.Proposal("p1"); err != nil || !proto.Equal(got, out) {
			t.Errorf("after reopening: %v, %v; want %v", got, err, out)
		}
	})
}
