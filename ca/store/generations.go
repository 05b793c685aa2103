package store

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/validity"
)

// The life of an issuer key generation after it was recorded (R-K1):
// PENDING → ACTIVE at its activation time (the ACTIVE one before it →
// SUPERSEDED), SUPERSEDED or COMPROMISED → RETIRED once its last
// certificate expired, RETIRED or COMPROMISED → DESTROYED. Each step is one
// transaction with its audit records (R-K3).

// ErrKeyState means an issuer key generation is not in a state the
// operation starts from.
var ErrKeyState = errors.New("issuer key generation is not in a state that allows it")

// GenerationBusyError refuses the retirement of a generation that still has
// unexpired certificates: it must keep signing their CRLs (R-K1).
type GenerationBusyError struct {
	Profile    storev1.Profile
	Generation uint32
	GenerationCertificates
}

func (e *GenerationBusyError) Error() string {
	return fmt.Sprintf("%s generation %d has %d unexpired certificates, the last expiring at %s", e.Profile, e.Generation,
		e.Unexpired, e.LastExpiry.UTC().Format(time.RFC3339))
}

// GenerationID names one issuer key generation.
type GenerationID struct {
	Profile    storev1.Profile
	Generation uint32
}

// GenerationCertificates is what a generation still answers for: its
// certificates that have not expired (validity.Live), revoked or not, and
// the latest notAfter among them. Certificates that were never delivered
// (ABANDONED) are not counted; reserved ones (PENDING) are.
type GenerationCertificates struct {
	Unexpired  uint64
	LastExpiry time.Time // zero when Unexpired is 0
}

func (g *GenerationCertificates) add(notAfter time.Time) {
	g.Unexpired++
	if notAfter.After(g.LastExpiry) {
		g.LastExpiry = notAfter
	}
}

// counts says whether rec still needs its issuer at now.
func counts(rec *storev1.Certificate, now time.Time) bool {
	return (rec.GetState() == storev1.CertState_CERT_STATE_ISSUED || rec.GetState() == storev1.CertState_CERT_STATE_PENDING) &&
		validity.Live(rec.GetNotAfter().AsTime(), now)
}

// UnexpiredByGeneration counts, for every issuer key generation that has
// any, the certificates not expired at now. It reads the whole certificates
// bucket (there is no index by generation): an operator's question, not
// one for every request.
func (s *Store) UnexpiredByGeneration(now time.Time) (map[GenerationID]GenerationCertificates, error) {
	out := map[GenerationID]GenerationCertificates{}
	err := s.db.View(func(tx engine.Tx) error {
		return scanUnexpired(tx, now, func(id GenerationID, notAfter time.Time) {
			g := out[id]
			g.add(notAfter)
			out[id] = g
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: unexpired certificates: %w", err)
	}
	return out, nil
}

func scanUnexpired(tx engine.Tx, now time.Time, fn func(GenerationID, time.Time)) error {
	rec := new(storev1.Certificate)
	return tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
		rec.Reset()
		if err := proto.Unmarshal(v, rec); err != nil {
			return fmt.Errorf("store is damaged: certificate %x: %w", k, err)
		}
		if counts(rec, now) {
			fn(GenerationID{rec.GetProfile(), rec.GetIssuerGeneration()}, rec.GetNotAfter().AsTime())
		}
		return nil
	})
}

// ActivateIssuerKey makes a PENDING generation ACTIVE and the profile's
// ACTIVE one SUPERSEDED, with the audit records, in one transaction. A
// generation that is not PENDING is ErrKeyState (an activation already
// recorded is not recorded twice).
func (s *Store) ActivateIssuerKey(p storev1.Profile, generation uint32, audit []*storev1.AuditRecord) error {
	err := s.changeIssuerKeys(p, audit, func(keys []*storev1.IssuerKey, now time.Time) ([]*storev1.IssuerKey, error) {
		k := findGeneration(keys, generation)
		if k == nil {
			return nil, fmt.Errorf("%s generation %d: %w", p, generation, ErrNotFound)
		}
		if k.GetState() != storev1.KeyState_KEY_STATE_PENDING {
			return nil, fmt.Errorf("%w: %s generation %d is %s, not PENDING", ErrKeyState, p, generation, k.GetState())
		}
		changed := []*storev1.IssuerKey{k}
		k.State = storev1.KeyState_KEY_STATE_ACTIVE
		for _, old := range keys {
			if old.GetState() == storev1.KeyState_KEY_STATE_ACTIVE && old != k {
				old.State = storev1.KeyState_KEY_STATE_SUPERSEDED
				changed = append(changed, old)
			}
		}
		return changed, nil
	})
	if err != nil {
		return fmt.Errorf("store: activate issuer key: %w", err)
	}
	return nil
}

// RetireIssuerKey makes a SUPERSEDED or COMPROMISED generation RETIRED,
// with the audit records, in one transaction. It is refused with a
// *GenerationBusyError while any certificate of the generation is
// unexpired at now, and with ErrKeyState from any other state.
func (s *Store) RetireIssuerKey(p storev1.Profile, generation uint32, now time.Time, audit []*storev1.AuditRecord) error {
	err := s.changeIssuerKeysTx(p, audit, func(tx engine.Tx, keys []*storev1.IssuerKey, _ time.Time) ([]*storev1.IssuerKey, error) {
		k, err := inState(keys, p, generation, storev1.KeyState_KEY_STATE_SUPERSEDED, storev1.KeyState_KEY_STATE_COMPROMISED)
		if err != nil {
			return nil, err
		}
		busy := &GenerationBusyError{Profile: p, Generation: generation}
		err = scanUnexpired(tx, now, func(id GenerationID, notAfter time.Time) {
			if id == (GenerationID{p, generation}) {
				busy.add(notAfter)
			}
		})
		if err != nil {
			return nil, err
		}
		if busy.Unexpired > 0 {
			return nil, busy
		}
		k.State = storev1.KeyState_KEY_STATE_RETIRED
		return []*storev1.IssuerKey{k}, nil
	})
	if err != nil {
		return fmt.Errorf("store: retire issuer key: %w", err)
	}
	return nil
}

// DestroyedIssuerKey records that a RETIRED or COMPROMISED generation's
// private key was destroyed in the HSM: it becomes DESTROYED, with the
// audit records, in one transaction. Any other state is ErrKeyState.
func (s *Store) DestroyedIssuerKey(p storev1.Profile, generation uint32, audit []*storev1.AuditRecord) error {
	err := s.changeIssuerKeys(p, audit, func(keys []*storev1.IssuerKey, _ time.Time) ([]*storev1.IssuerKey, error) {
		k, err := inState(keys, p, generation, storev1.KeyState_KEY_STATE_RETIRED, storev1.KeyState_KEY_STATE_COMPROMISED)
		if err != nil {
			return nil, err
		}
		k.State = storev1.KeyState_KEY_STATE_DESTROYED
		return []*storev1.IssuerKey{k}, nil
	})
	if err != nil {
		return fmt.Errorf("store: destroyed issuer key: %w", err)
	}
	return nil
}

func findGeneration(keys []*storev1.IssuerKey, generation uint32) *storev1.IssuerKey {
	for _, k := range keys {
		if k.GetGeneration() == generation {
			return k
		}
	}
	return nil
}

// inState returns the generation if it is in one of the states.
func inState(keys []*storev1.IssuerKey, p storev1.Profile, generation uint32, states ...storev1.KeyState) (*storev1.IssuerKey, error) {
	k := findGeneration(keys, generation)
	if k == nil {
		return nil, fmt.Errorf("%s generation %d: %w", p, generation, ErrNotFound)
	}
	if !slices.Contains(states, k.GetState()) {
		return nil, fmt.Errorf("%w: %s generation %d is %s", ErrKeyState, p, generation, k.GetState())
	}
	return k, nil
}

// changeIssuerKeys runs change on the profile's generations and stores the
// ones it returns, with the audit records, in one transaction.
func (s *Store) changeIssuerKeys(p storev1.Profile, audit []*storev1.AuditRecord,
	change func(keys []*storev1.IssuerKey, now time.Time) ([]*storev1.IssuerKey, error)) error {
	return s.changeIssuerKeysTx(p, audit, func(_ engine.Tx, keys []*storev1.IssuerKey, now time.Time) ([]*storev1.IssuerKey, error) {
		return change(keys, now)
	})
}

func (s *Store) changeIssuerKeysTx(p storev1.Profile, audit []*storev1.AuditRecord,
	change func(tx engine.Tx, keys []*storev1.IssuerKey, now time.Time) ([]*storev1.IssuerKey, error)) error {
	now := s.now()
	recs, err := prepareAudit(audit, true, now)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx engine.Tx) error {
		b := tx.Bucket(bucketIssuers)
		keys, err := profileKeys(b, p)
		if err != nil {
			return err
		}
		changed, err := change(tx, keys, now)
		if err != nil {
			return err
		}
		for _, k := range changed {
			if err := putIssuerKey(b, k); err != nil {
				return err
			}
		}
		return appendAudit(tx, recs)
	})
}
