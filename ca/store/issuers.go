package store

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

var (
	// ErrAlreadyInitialized means the store already holds issuer keys, so
	// InitIssuers refused to record another first set.
	ErrAlreadyInitialized = errors.New("issuer keys are already recorded")

	// ErrGeneration means a new issuer key generation is not the one that
	// follows the profile's last one.
	ErrGeneration = errors.New("issuer key generation out of sequence")

	// ErrRotationPending means the profile already has a PENDING
	// generation waiting for its activation time (R-K1).
	ErrRotationPending = errors.New("a rotation of this issuer is already pending")
)

// InitIssuers records the first issuer keys of a fresh store, together with
// the audit records of the ceremony that made them, in one transaction. For
// each profile the keys' generations must be 1, 2, … with no gaps, with at
// most one ACTIVE. At least one audit record is required (R-K3).
//
// It fails with ErrAlreadyInitialized, and changes nothing, if any issuer key
// is already recorded. Unset created_at times are filled in from
// Options.Now; the caller's messages are not modified.
func (s *Store) InitIssuers(keys []*storev1.IssuerKey, audit []*storev1.AuditRecord) error {
	if err := s.initIssuers(keys, audit); err != nil {
		return fmt.Errorf("store: init issuers: %w", err)
	}
	return nil
}

func (s *Store) initIssuers(keys []*storev1.IssuerKey, audit []*storev1.AuditRecord) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: keys: none given", ErrInvalidArgument)
	}
	now := s.now()
	ks := make([]*storev1.IssuerKey, len(keys))
	for i, k := range keys {
		if err := validateIssuerKey(fmt.Sprintf("keys[%d]", i), k); err != nil {
			return err
		}
		ks[i] = prepareIssuerKey(k, now)
	}
	if err := checkFirstGenerations(ks); err != nil {
		return err
	}
	recs, err := prepareAudit(audit, true, now)
	if err != nil {
		return err
	}

	return s.db.Update(func(tx engine.Tx) error {
		b := tx.Bucket(bucketIssuers)
		if k, _ := b.Cursor().First(); k != nil {
			return ErrAlreadyInitialized
		}
		for _, k := range ks {
			if err := putIssuerKey(b, k); err != nil {
				return err
			}
		}
		return appendAudit(tx, recs)
	})
}

// checkFirstGenerations checks that, per profile, the generations are 1…n
// and at most one is ACTIVE.
func checkFirstGenerations(keys []*storev1.IssuerKey) error {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b *storev1.IssuerKey) int {
		return cmp.Or(cmp.Compare(a.GetProfile(), b.GetProfile()), cmp.Compare(a.GetGeneration(), b.GetGeneration()))
	})
	var (
		profile storev1.Profile
		last    uint32
		active  bool
	)
	for _, k := range sorted {
		if k.GetProfile() != profile {
			profile, last, active = k.GetProfile(), 0, false
		}
		if k.GetGeneration() != last+1 {
			return fmt.Errorf("%w: keys: %s generations must be 1, 2, … without gaps or repeats; after %d comes %d, not %d",
				ErrGeneration, profile, last, last+1, k.GetGeneration())
		}
		if k.GetState() == storev1.KeyState_KEY_STATE_ACTIVE {
			if active {
				return fmt.Errorf("%w: keys: %s has more than one ACTIVE generation", ErrInvalidArgument, profile)
			}
			active = true
		}
		last = k.GetGeneration()
	}
	return nil
}

// AddIssuerKey records a new generation of an issuer key (rotation, R-K1)
// together with its audit records, in one transaction. The profile must
// already have generations, and key.generation must be exactly the next
// one; otherwise it fails with ErrGeneration. If the new key is ACTIVE, the
// profile's previously ACTIVE generation becomes SUPERSEDED in the same
// transaction. A PENDING key needs its activate_at, and no generation is
// added while one is PENDING (ErrRotationPending). At least one audit
// record is required (R-K3).
//
// An unset created_at is filled in from Options.Now; the caller's messages
// are not modified.
func (s *Store) AddIssuerKey(key *storev1.IssuerKey, audit []*storev1.AuditRecord) error {
	if err := s.addIssuerKey(key, audit); err != nil {
		return fmt.Errorf("store: add issuer key: %w", err)
	}
	return nil
}

func (s *Store) addIssuerKey(key *storev1.IssuerKey, audit []*storev1.AuditRecord) error {
	if err := validateIssuerKey("key", key); err != nil {
		return err
	}
	if key.GetState() == storev1.KeyState_KEY_STATE_PENDING && key.GetActivateAt() == nil {
		return fmt.Errorf("%w: key.activate_at is required for a PENDING generation", ErrInvalidArgument)
	}
	now := s.now()
	k := prepareIssuerKey(key, now)
	recs, err := prepareAudit(audit, true, now)
	if err != nil {
		return err
	}

	return s.db.Update(func(tx engine.Tx) error {
		b := tx.Bucket(bucketIssuers)
		existing, err := profileKeys(b, k.GetProfile())
		if err != nil {
			return err
		}
		for _, old := range existing {
			if old.GetState() == storev1.KeyState_KEY_STATE_PENDING {
				return fmt.Errorf("%w: %s generation %d activates at %s", ErrRotationPending, k.GetProfile(),
					old.GetGeneration(), old.GetActivateAt().AsTime().UTC().Format(time.RFC3339))
			}
		}
		if len(existing) == 0 {
			return fmt.Errorf("%w: %s has no generation yet; its first is recorded by InitIssuers",
				ErrGeneration, k.GetProfile())
		}
		last := existing[len(existing)-1].GetGeneration()
		if k.GetGeneration() != last+1 {
			return fmt.Errorf("%w: %s is at generation %d, so the next is %d, not %d",
				ErrGeneration, k.GetProfile(), last, last+1, k.GetGeneration())
		}
		if k.GetState() == storev1.KeyState_KEY_STATE_ACTIVE {
			for _, old := range existing {
				if old.GetState() != storev1.KeyState_KEY_STATE_ACTIVE {
					continue
				}
				old.State = storev1.KeyState_KEY_STATE_SUPERSEDED
				if err := putIssuerKey(b, old); err != nil {
					return err
				}
			}
		}
		if err := putIssuerKey(b, k); err != nil {
			return err
		}
		return appendAudit(tx, recs)
	})
}

// Issuers returns every recorded issuer key generation, ordered by profile
// then generation.
func (s *Store) Issuers() ([]*storev1.IssuerKey, error) {
	var keys []*storev1.IssuerKey
	err := s.db.View(func(tx engine.Tx) error {
		return tx.Bucket(bucketIssuers).ForEach(func(k, v []byte) error {
			key, err := decodeIssuer(k, v)
			if err != nil {
				return err
			}
			keys = append(keys, key)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: issuers: %w", err)
	}
	return keys, nil
}

// Initialized reports whether the store holds any issuer key, that is,
// whether InitIssuers has succeeded on it.
func (s *Store) Initialized() (bool, error) {
	var found bool
	err := s.db.View(func(tx engine.Tx) error {
		k, _ := tx.Bucket(bucketIssuers).Cursor().First()
		found = k != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: initialized: %w", err)
	}
	return found, nil
}

// validateIssuerKey checks the fields a caller must set. name says which
// argument k is, for the error.
func validateIssuerKey(name string, k *storev1.IssuerKey) error {
	var problem string
	switch {
	case k == nil:
		problem = " is nil"
	case k.GetProfile() == storev1.Profile_PROFILE_UNSPECIFIED:
		problem = ".profile is unspecified"
	case storev1.Profile_name[int32(k.GetProfile())] == "":
		problem = fmt.Sprintf(".profile has unknown value %d", k.GetProfile())
	case k.GetGeneration() < 1:
		problem = ".generation is 0; generations start at 1"
	case k.GetKeyLabel() == "":
		problem = ".key_label is empty"
	case len(k.GetKeyId()) == 0:
		problem = ".key_id is empty"
	case len(k.GetCertificateDer()) == 0:
		problem = ".certificate_der is empty"
	case k.GetState() == storev1.KeyState_KEY_STATE_UNSPECIFIED:
		problem = ".state is unspecified"
	case storev1.KeyState_name[int32(k.GetState())] == "":
		problem = fmt.Sprintf(".state has unknown value %d", k.GetState())
	default:
		return nil
	}
	return fmt.Errorf("%w: %s%s", ErrInvalidArgument, name, problem)
}

// prepareIssuerKey returns the copy of k to store, with created_at filled in.
func prepareIssuerKey(k *storev1.IssuerKey, now time.Time) *storev1.IssuerKey {
	c := proto.CloneOf(k)
	if c.GetCreatedAt() == nil {
		c.CreatedAt = timestamppb.New(now)
	}
	return c
}

// profileKeys returns the recorded generations of profile p, in order.
func profileKeys(b engine.Bucket, p storev1.Profile) ([]*storev1.IssuerKey, error) {
	var keys []*storev1.IssuerKey
	prefix := issuerPrefix(p)
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		key, err := decodeIssuer(k, v)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}

func putIssuerKey(b engine.Bucket, k *storev1.IssuerKey) error {
	data, err := marshal(k)
	if err != nil {
		return fmt.Errorf("encode %s generation %d: %w", k.GetProfile(), k.GetGeneration(), err)
	}
	return b.Put(issuerKey(k.GetProfile(), k.GetGeneration()), data)
}

// decodeIssuer decodes one stored issuer key and checks that it is stored
// under its own key.
func decodeIssuer(k, v []byte) (*storev1.IssuerKey, error) {
	p, gen, ok := decodeIssuerKey(k)
	if !ok {
		return nil, fmt.Errorf("store is damaged: issuer record under malformed key %x", k)
	}
	key := new(storev1.IssuerKey)
	if err := proto.Unmarshal(v, key); err != nil {
		return nil, fmt.Errorf("store is damaged: issuer record %s generation %d: %w", p, gen, err)
	}
	if key.GetProfile() != p || key.GetGeneration() != gen {
		return nil, fmt.Errorf("store is damaged: issuer record under %s generation %d says %s generation %d",
			p, gen, key.GetProfile(), key.GetGeneration())
	}
	return key, nil
}
