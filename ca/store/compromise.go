package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// An issuer key compromise (R-K2) is recorded in steps, so that a
// generation with hundreds of thousands of certificates never needs one
// huge transaction and a CA that stops half way finishes when run again:
//
//  1. MarkCompromised: the generation becomes COMPROMISED, in one
//     transaction with its audit record. From then on Reserve refuses any
//     certificate of it (ErrIssuerCompromised), so the set of its
//     certificates is fixed.
//  2. RevokeCompromised, batch after batch: walks the certificates in
//     serial order from a cursor and revokes up to a batch of the
//     generation's unrevoked ones, each through revokeRecord with reason
//     cACompromise and its own audit record. What is revoked already keeps
//     its first revocation (R-R2) and is skipped, so a walk started again
//     from the beginning revokes nothing twice.

// CompromiseCause is the cause recorded with every revocation of an issuer
// key compromise.
const CompromiseCause = "issuer key compromise"

// ErrIssuerCompromised: the certificate's issuer key generation is
// compromised (R-K2); nothing more is issued with it.
var ErrIssuerCompromised = errors.New("issuer key generation is compromised")

// ErrNotCompromised: RevokeCompromised was asked to revoke the certificates
// of a generation that is not marked compromised.
var ErrNotCompromised = errors.New("issuer key generation is not marked compromised")

// CompromiseCount is how far a compromise stands when it is marked.
type CompromiseCount struct {
	// Total counts the generation's certificates a compromise revokes
	// (pending or issued, expired or not); Revoked those of them already
	// revoked.
	Total, Revoked uint64
	// Marked: the generation became COMPROMISED now (false: it was
	// already).
	Marked bool
}

// MarkCompromised makes generation of p COMPROMISED, with the audit record
// "issuer.compromise" (fields first, then the previous state and
// invalidSince), unless it is already; and counts its certificates.
func (s *Store) MarkCompromised(p storev1.Profile, generation uint32, now, invalidSince time.Time, actor string, fields []*storev1.AuditField) (*CompromiseCount, error) {
	if now.IsZero() || invalidSince.IsZero() || actor == "" {
		return nil, fmt.Errorf("store: mark compromised: %w: times and actor are required", ErrInvalidArgument)
	}
	res := &CompromiseCount{}
	err := s.write(func(tx engine.Tx) error {
		*res = CompromiseCount{}
		issuers := tx.Bucket(bucketIssuers)
		v := issuers.Get(issuerKey(p, generation))
		if v == nil {
			return fmt.Errorf("%s generation %d: %w", p, generation, ErrNotFound)
		}
		key, err := decodeIssuer(issuerKey(p, generation), v)
		if err != nil {
			return err
		}
		if key.State != storev1.KeyState_KEY_STATE_COMPROMISED {
			rec := &storev1.AuditRecord{Time: timestamppb.New(now), Actor: actor, Action: "issuer.compromise",
				Fields: append(append([]*storev1.AuditField(nil), fields...),
					&storev1.AuditField{Key: "profile", Value: p.String()}, &storev1.AuditField{Key: "generation", Value: fmt.Sprint(generation)},
					&storev1.AuditField{Key: "previous_state", Value: key.State.String()},
					&storev1.AuditField{Key: "invalid_since", Value: invalidSince.UTC().Format(time.RFC3339)})}
			key.State = storev1.KeyState_KEY_STATE_COMPROMISED
			if err := putIssuerKey(issuers, key); err != nil {
				return err
			}
			recs, err := prepareAudit([]*storev1.AuditRecord{rec}, true, now)
			if err != nil {
				return err
			}
			if err := appendAudit(tx, recs); err != nil {
				return err
			}
			res.Marked = true
		}
		return tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
			rec, ok, err := compromiseTarget(k, v, p, generation)
			if err != nil || !ok {
				return err
			}
			res.Total++
			if rec.Revocation != nil {
				res.Revoked++
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: mark compromised: %w", err)
	}
	return res, nil
}

// compromiseTarget decodes a certificate record and says whether an issuer
// compromise of generation of p revokes it: the generation's pending or
// issued certificates, expired ones included, so that OCSP says revoked for
// them too.
func compromiseTarget(k, v []byte, p storev1.Profile, generation uint32) (*storev1.Certificate, bool, error) {
	rec := new(storev1.Certificate)
	if err := proto.Unmarshal(v, rec); err != nil {
		return nil, false, fmt.Errorf("store is damaged: certificate %x: %w", k, err)
	}
	ok := rec.Profile == p && rec.IssuerGeneration == generation &&
		(rec.State == storev1.CertState_CERT_STATE_ISSUED || rec.State == storev1.CertState_CERT_STATE_PENDING)
	return rec, ok, nil
}

// CompromiseBatch is what one RevokeCompromised did.
type CompromiseBatch struct {
	// Revoked counts the certificates revoked now; AlreadyRevoked those
	// the walk passed that were revoked before (they keep their first
	// revocation, R-R2).
	Revoked, AlreadyRevoked int
	// Next is the cursor to pass to the next batch; Done: the walk reached
	// the last certificate.
	Next []byte
	Done bool
	// Revision is the status-change revision after the batch.
	Revision uint64
}

// RevokeCompromised revokes, in one transaction, up to limit unrevoked
// certificates of the compromised generation of p, walking the
// certificates in serial order after the cursor after (nil: from the
// first): reason cACompromise, revoked at now, invalid since invalidSince
// (never before a certificate's notBefore), each with its status change
// and its audit record by actor (R-K3). The generation must be marked
// compromised (ErrNotCompromised).
func (s *Store) RevokeCompromised(p storev1.Profile, generation uint32, after []byte, limit int, now, invalidSince time.Time, actor string) (*CompromiseBatch, error) {
	if now.IsZero() || invalidSince.IsZero() || actor == "" || limit <= 0 {
		return nil, fmt.Errorf("store: revoke compromised: %w: times, actor and a positive limit are required", ErrInvalidArgument)
	}
	res := &CompromiseBatch{}
	err := s.write(func(tx engine.Tx) error {
		*res = CompromiseBatch{}
		v := tx.Bucket(bucketIssuers).Get(issuerKey(p, generation))
		if v == nil {
			return fmt.Errorf("%s generation %d: %w", p, generation, ErrNotFound)
		}
		key, err := decodeIssuer(issuerKey(p, generation), v)
		if err != nil {
			return err
		}
		if key.State != storev1.KeyState_KEY_STATE_COMPROMISED {
			return fmt.Errorf("%s generation %d is %s: %w", p, generation, key.State, ErrNotCompromised)
		}
		var targets []*storev1.Certificate
		c := tx.Bucket(bucketCerts).Cursor()
		k, v := seekAfter(c, after)
		for ; k != nil && len(targets) < limit; k, v = c.Next() {
			res.Next = bytes.Clone(k)
			rec, ok, err := compromiseTarget(k, v, p, generation)
			if err != nil {
				return err
			}
			switch {
			case !ok:
			case rec.Revocation != nil:
				res.AlreadyRevoked++
			default:
				targets = append(targets, rec)
			}
		}
		res.Done = k == nil
		// Written after the walk: a cursor is not to be used across
		// changes of its bucket.
		audit := make([]*storev1.AuditRecord, 0, len(targets))
		for _, rec := range targets {
			err := revokeRecord(tx, rec, &storev1.Revocation{RevokedAt: timestamppb.New(now), Reason: ReasonCACompromise,
				InvalidityDate: timestamppb.New(invalidityFor(rec, invalidSince)), Cause: CompromiseCause}, false)
			if err != nil {
				return err
			}
			audit = append(audit, revocationAudit(rec, now, actor, CompromiseCause, false))
		}
		if err := appendAudit(tx, audit); err != nil {
			return err
		}
		res.Revoked = len(targets)
		res.Revision = currentRevision(tx)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: revoke compromised: %w", err)
	}
	return res, nil
}

// CompromiseBatchSize is how many certificates CompromiseIssuer revokes
// in one transaction.
const CompromiseBatchSize = 2000

// CompromiseResult is what CompromiseIssuer did.
type CompromiseResult struct {
	// Revoked counts the certificates revoked now; AlreadyRevoked those
	// that were revoked before and keep their first revocation (R-R2).
	Revoked, AlreadyRevoked int
	// Revision is the status-change revision after it.
	Revision uint64
}

// CompromiseIssuer records that an issuer key generation is compromised
// (R-K2), all steps at once: MarkCompromised, then RevokeCompromised
// batch after batch to the end. Doing it again changes nothing. The CA
// runs the same steps one by one, reporting progress (ca.Compromise).
func (s *Store) CompromiseIssuer(p storev1.Profile, generation uint32, now, invalidSince time.Time, actor string) (*CompromiseResult, error) {
	if _, err := s.MarkCompromised(p, generation, now, invalidSince, actor, nil); err != nil {
		return nil, err
	}
	res := &CompromiseResult{}
	var after []byte
	for {
		b, err := s.RevokeCompromised(p, generation, after, CompromiseBatchSize, now, invalidSince, actor)
		if err != nil {
			return nil, err
		}
		res.Revoked += b.Revoked
		res.AlreadyRevoked += b.AlreadyRevoked
		res.Revision = b.Revision
		if b.Done {
			return res, nil
		}
		after = b.Next
	}
}
