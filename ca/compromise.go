package ca

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/store"
)

// Fields of a compromise request, as the operator API names them.
const (
	compromiseProfileField      = "action.compromise.profile"
	compromiseGenerationField   = "action.compromise.generation"
	compromiseInvalidSinceField = "action.compromise.invalid_since"
)

// CheckCompromise says whether generation of p can be recorded
// compromised with invalidSince (R-K2): the generation exists, and
// invalidSince (zero: when it runs) is not in the future nor before the
// generation's certificate was made. Compromising a generation already
// marked compromised is allowed: it finishes what an interrupted
// compromise left, revoking nothing twice.
func (c *CA) CheckCompromise(p Profile, generation uint32, invalidSince time.Time) error {
	_, err := c.compromiseTarget(p, generation, invalidSince)
	return err
}

// compromiseTarget finds the generation CheckCompromise checks.
func (c *CA) compromiseTarget(p Profile, generation uint32, invalidSince time.Time) (*storev1.IssuerKey, error) {
	if p != ProfileSign && p != ProfileAuth {
		return nil, refuse(KindInvalid, compromiseProfileField, "R-K2", "must be SIGN or AUTH")
	}
	if generation == 0 {
		return nil, refuse(KindInvalid, compromiseGenerationField, "R-K2", "must be a generation number, 1 or more")
	}
	keys, err := c.cfg.Store.Issuers()
	if err != nil {
		return nil, fmt.Errorf("ca: reading the issuer generations: %w", err)
	}
	var key *storev1.IssuerKey
	for _, k := range keys {
		if k.Profile == p && k.Generation == generation {
			key = k
		}
	}
	if key == nil {
		return nil, refuse(KindNotFound, compromiseGenerationField, "R-K2", "%s has no generation %d", issuer.ShortName(p), generation)
	}
	if invalidSince.IsZero() {
		return key, nil
	}
	if now := c.now(); invalidSince.After(now.Add(maxClockSkew)) {
		return nil, refuse(KindInvalid, compromiseInvalidSinceField, "R-K2", "is in the future")
	}
	if cert := c.IssuerCertificate(p, generation); cert != nil && invalidSince.Before(cert.NotBefore) {
		return nil, refuse(KindInvalid, compromiseInvalidSinceField, "R-K2", "is before %s was made (%s)",
			IssuerName(p, generation), cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return key, nil
}

// compromiseBatch is how many certificates one transaction of a
// compromise revokes.
var compromiseBatch = store.CompromiseBatchSize

// Compromise records an issuer key compromise (R-K2): the generation
// issues nothing from the first step on, and every certificate it issued
// is revoked with cACompromise, in batches, reporting progress. Run again
// after an interruption, it finishes what is left, revoking nothing twice.
//
// invalidSince zero means now. The first step marks the generation
// COMPROMISED (the store refuses any issuance with it from then on) and
// reloads the issuers so that this process stops choosing it; then each
// batch is one transaction, after which the CRL and OCSP publishers are
// told (OnStatusChange) and progress(done, total) is called. When ctx ends
// between two batches Compromise returns ctx's error: what is revoked stays
// revoked, and running it again continues.
func (c *CA) Compromise(ctx context.Context, p Profile, generation uint32, invalidSince time.Time, by Approval,
	progress func(done, total uint64)) (*store.CompromiseResult, error) {
	if _, err := c.compromiseTarget(p, generation, invalidSince); err != nil {
		return nil, err
	}
	if by.Proposer == "" {
		return nil, errors.New("ca: compromise: the approval names no proposer")
	}
	now := c.now()
	if invalidSince.IsZero() {
		invalidSince = now
	}
	actor := by.Proposer
	count, err := c.cfg.Store.MarkCompromised(p, generation, now, invalidSince, actor, approvalFields(by))
	if err != nil {
		return nil, fmt.Errorf("ca: compromise: %w", err)
	}
	name := IssuerName(p, generation)
	if count.Marked {
		c.log.Warn("issuer key generation marked compromised (R-K2): revoking its certificates", "issuer", name, "certificates", count.Total, "proposal", by.ProposalID)
	}
	if err := c.Reload(ctx); err != nil {
		// The store refuses issuance with the generation already; Reload
		// only moves this process's choice of issuer.
		c.log.Error("reloading the issuers after the compromise failed; the store refuses issuance with the compromised generation meanwhile", "issuer", name, "error", err)
	}
	done, total := count.Revoked, count.Total
	if progress != nil {
		progress(done, total)
	}
	res := &store.CompromiseResult{}
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		b, err := c.cfg.Store.RevokeCompromised(p, generation, after, compromiseBatch, c.now(), invalidSince, actor)
		if err != nil {
			return res, fmt.Errorf("ca: compromise: %w", err)
		}
		res.Revoked += b.Revoked
		c.metrics.revocations(SourceCompromise, store.ReasonCACompromise, b.Revoked)
		res.AlreadyRevoked += b.AlreadyRevoked
		res.Revision = b.Revision
		done = min(total, done+uint64(b.Revoked))
		if b.Revoked > 0 && c.cfg.OnStatusChange != nil {
			c.cfg.OnStatusChange()
		}
		if b.Done {
			done = total
		}
		if progress != nil {
			progress(done, total)
		}
		if b.Done {
			c.log.Info("issuer compromise finished (R-K2)", "issuer", name, "revoked", res.Revoked, "already_revoked", res.AlreadyRevoked, "proposal", by.ProposalID)
			return res, nil
		}
		after = b.Next
	}
}

// approvalFields name an approval in an audit record (R-K3).
func approvalFields(by Approval) []*storev1.AuditField {
	return []*storev1.AuditField{{Key: "proposal", Value: by.ProposalID}, {Key: "proposer", Value: by.Proposer},
		{Key: "approvers", Value: strings.Join(by.Approvers, ",")}}
}
