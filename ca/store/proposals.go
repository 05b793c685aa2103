package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// Proposals of key operations (R-K1, R-K2): ca/ops decides what a proposal
// may become; the store keeps each one, with its audit records written in
// the same transaction as the change they record (R-K3).

// ErrProposalExists: a proposal with that id is already stored.
var ErrProposalExists = errors.New("proposal id already used")

// MaxProposalID bounds a proposal id.
const MaxProposalID = 64

// CreateProposal stores a new proposal with its audit records. An id in use
// is ErrProposalExists and nothing is written.
func (s *Store) CreateProposal(p *storev1.Proposal, audit []*storev1.AuditRecord) error {
	if err := validateProposal(p); err != nil {
		return fmt.Errorf("store: create proposal: %w", err)
	}
	recs, err := prepareAudit(audit, true, p.CreatedAt.AsTime())
	if err != nil {
		return fmt.Errorf("store: create proposal: %w", err)
	}
	err = s.write(func(tx engine.Tx) error {
		b := tx.Bucket(bucketProposals)
		if b.Get([]byte(p.Id)) != nil {
			return fmt.Errorf("%s: %w", p.Id, ErrProposalExists)
		}
		if err := putProposal(b, p); err != nil {
			return err
		}
		return appendAudit(tx, slices.Clone(recs))
	})
	if err != nil {
		return fmt.Errorf("store: create proposal: %w", err)
	}
	return nil
}

// Proposal returns the proposal id, or ErrNotFound.
func (s *Store) Proposal(id string) (*storev1.Proposal, error) {
	var p *storev1.Proposal
	err := s.db.View(func(tx engine.Tx) error {
		var err error
		p, err = getProposal(tx.Bucket(bucketProposals), id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: proposal: %w", err)
	}
	return p, nil
}

// Proposals returns up to limit proposals (all when limit <= 0), newest
// first (by creation time, then id).
func (s *Store) Proposals(limit int) ([]*storev1.Proposal, error) {
	var all []*storev1.Proposal
	err := s.db.View(func(tx engine.Tx) error {
		return tx.Bucket(bucketProposals).ForEach(func(k, v []byte) error {
			p := new(storev1.Proposal)
			if err := proto.Unmarshal(v, p); err != nil {
				return fmt.Errorf("store is damaged: proposal %q: %w", k, err)
			}
			all = append(all, p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: proposals: %w", err)
	}
	slices.SortFunc(all, func(a, b *storev1.Proposal) int {
		if c := b.CreatedAt.AsTime().Compare(a.CreatedAt.AsTime()); c != 0 {
			return c
		}
		return strings.Compare(b.Id, a.Id)
	})
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

// UpdateProposal changes proposal id in one transaction: fn gets a copy
// of the stored record to change and returns the audit records of the
// change. When fn fails nothing is written and its error is returned
// as is (wrapped). fn may run more than once (group commit, batch.go) and
// must change nothing outside the record. It returns the record as
// stored.
func (s *Store) UpdateProposal(id string, fn func(p *storev1.Proposal) ([]*storev1.AuditRecord, error)) (*storev1.Proposal, error) {
	var out *storev1.Proposal
	err := s.write(func(tx engine.Tx) error {
		b := tx.Bucket(bucketProposals)
		p, err := getProposal(b, id)
		if err != nil {
			return err
		}
		audit, err := fn(p)
		if err != nil {
			return err
		}
		if p.Id != id {
			return fmt.Errorf("%w: a proposal's id cannot change", ErrInvalidArgument)
		}
		if err := validateProposal(p); err != nil {
			return err
		}
		recs, err := prepareAudit(audit, false, s.now())
		if err != nil {
			return err
		}
		if err := putProposal(b, p); err != nil {
			return err
		}
		out = p
		return appendAudit(tx, recs)
	})
	if err != nil {
		return nil, fmt.Errorf("store: update proposal: %w", err)
	}
	return out, nil
}

func validateProposal(p *storev1.Proposal) error {
	switch {
	case p == nil:
		return fmt.Errorf("%w: proposal is nil", ErrInvalidArgument)
	case p.Id == "" || len(p.Id) > MaxProposalID:
		return fmt.Errorf("%w: proposal id must be 1-%d bytes", ErrInvalidArgument, MaxProposalID)
	case storev1.ProposalKind_name[int32(p.Kind)] == "" || p.Kind == storev1.ProposalKind_PROPOSAL_KIND_UNSPECIFIED:
		return fmt.Errorf("%w: proposal %s: kind is not set", ErrInvalidArgument, p.Id)
	case storev1.ProposalState_name[int32(p.State)] == "" || p.State == storev1.ProposalState_PROPOSAL_STATE_UNSPECIFIED:
		return fmt.Errorf("%w: proposal %s: state is not set", ErrInvalidArgument, p.Id)
	case p.Proposer == "" || p.CreatedAt == nil || p.ExpiresAt == nil || p.Required == 0:
		return fmt.Errorf("%w: proposal %s: proposer, created_at, expires_at and required are required", ErrInvalidArgument, p.Id)
	}
	return nil
}

func getProposal(b engine.Bucket, id string) (*storev1.Proposal, error) {
	v := b.Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("proposal %s: %w", id, ErrNotFound)
	}
	p := new(storev1.Proposal)
	if err := proto.Unmarshal(v, p); err != nil {
		return nil, fmt.Errorf("store is damaged: proposal %s: %w", id, err)
	}
	return p, nil
}

func putProposal(b engine.Bucket, p *storev1.Proposal) error {
	v, err := marshal(p)
	if err != nil {
		return err
	}
	return b.Put([]byte(p.Id), v)
}
