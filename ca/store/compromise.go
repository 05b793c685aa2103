package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// CompromiseResult is what CompromiseIssuer did.
type CompromiseResult struct {
	// Revoked counts the certificates revoked now; AlreadyRevoked those
	// that were revoked before and keep their first revocation (R-R2).
	Revoked, AlreadyRevoked int
	// Revision is the status-change revision after it.
	Revision uint64
}

// CompromiseIssuer records that an issuer key generation is compromised
// (R-K2): in one transaction the generation becomes COMPROMISED, so it
// issues nothing more, and every certificate it issued that is pending or
// issued and not yet revoked is revoked with reason cACompromise, revoked at
// now and invalid since invalidSince, each in the status-change log and the
// audit log (R-K3). Expired certificates are revoked too, so that OCSP says
// revoked for them. Doing it again changes nothing.
func (s *Store) CompromiseIssuer(p storev1.Profile, generation uint32, now, invalidSince time.Time, actor string) (*CompromiseResult, error) {
	if now.IsZero() || invalidSince.IsZero() || actor == "" {
		return nil, fmt.Errorf("store: compromise issuer: %w: times and actor are required", ErrInvalidArgument)
	}
	res := &CompromiseResult{}
	err := s.write(func(tx *bolt.Tx) error {
		issuers := tx.Bucket(bucketIssuers)
		v := issuers.Get(issuerKey(p, generation))
		if v == nil {
			return fmt.Errorf("%s generation %d: %w", p, generation, ErrNotFound)
		}
		key, err := decodeIssuer(issuerKey(p, generation), v)
		if err != nil {
			return err
		}
		audit := []*storev1.AuditRecord{{Time: timestamppb.New(now), Actor: actor, Action: "issuer.compromise",
			Fields: []*storev1.AuditField{{Key: "profile", Value: p.String()}, {Key: "generation", Value: fmt.Sprint(generation)},
				{Key: "previous_state", Value: key.State.String()}, {Key: "invalid_since", Value: invalidSince.UTC().Format(time.RFC3339)}}}}
		if key.State != storev1.KeyState_KEY_STATE_COMPROMISED {
			key.State = storev1.KeyState_KEY_STATE_COMPROMISED
			if err := putIssuerKey(issuers, key); err != nil {
				return err
			}
		}
		certs := tx.Bucket(bucketCerts)
		var targets []*storev1.Certificate
		err = certs.ForEach(func(k, v []byte) error {
			rec := new(storev1.Certificate)
			if err := proto.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("store is damaged: certificate %x: %w", k, err)
			}
			if rec.Profile != p || rec.IssuerGeneration != generation ||
				(rec.State != storev1.CertState_CERT_STATE_ISSUED && rec.State != storev1.CertState_CERT_STATE_PENDING) {
				return nil
			}
			if rec.Revocation != nil {
				res.AlreadyRevoked++
				return nil
			}
			targets = append(targets, rec)
			return nil
		})
		if err != nil {
			return err
		}
		// Written after the walk: bbolt forbids changing a bucket while
		// ForEach runs over it.
		for _, rec := range targets {
			err := revokeRecord(tx, rec, &storev1.Revocation{RevokedAt: timestamppb.New(now), Reason: ReasonCACompromise,
				InvalidityDate: timestamppb.New(invalidSince), Cause: "issuer key compromise"}, false)
			if err != nil {
				return err
			}
			audit = append(audit, revocationAudit(rec, now, actor, rec.Revocation.Cause, false))
		}
		res.Revoked = len(targets)
		recs, err := prepareAudit(audit, false, now)
		if err != nil {
			return err
		}
		if err := appendAudit(tx, recs); err != nil {
			return err
		}
		res.Revision = currentRevision(tx)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: compromise issuer: %w", err)
	}
	return res, nil
}
