package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// ResponderCertificate returns the current delegated OCSP responder
// certificate of the HSM key labelled keyLabel (R-R6), or nil when none was
// saved.
func (s *Store) ResponderCertificate(keyLabel string) ([]byte, error) {
	var der []byte
	err := s.db.View(func(tx engine.Tx) error {
		der = bytes.Clone(tx.Bucket(bucketMeta).Get(append(bytes.Clone(metaResponder), keyLabel...)))
		return nil
	})
	return der, err
}

// SaveResponderCertificate makes der the current responder certificate of
// keyLabel. Who certified it is in the audit log, written by the certifier.
func (s *Store) SaveResponderCertificate(keyLabel string, der []byte) error {
	if keyLabel == "" || len(der) == 0 {
		return fmt.Errorf("store: save responder certificate: %w: label and certificate are required", ErrInvalidArgument)
	}
	return s.write(func(tx engine.Tx) error {
		return tx.Bucket(bucketMeta).Put(append(bytes.Clone(metaResponder), keyLabel...), bytes.Clone(der))
	})
}

// ErrResponderKeyRevoked: an operator revoked a responder certificate of
// this key; the key is never certified again (R-R6).
var ErrResponderKeyRevoked = errors.New("responder key was revoked")

// Audit actions of responder certificates, as ReconcileAudit reads them.
const (
	ActionResponderCertify = "ocsp.responder.certify"
	ActionResponderRevoke  = "ocsp.responder.revoke"
)

// ReserveResponder records a delegated OCSP responder certificate as
// PENDING with its audit record, in one transaction, before the issuer key
// signs it: a crash after this leaves a record, never an unknown
// certificate. It refuses a key an operator revoked
// (ErrResponderKeyRevoked) and a serial already used (ErrSerialTaken).
func (s *Store) ReserveResponder(rec *storev1.ResponderCertificate, audit *storev1.AuditRecord) error {
	if len(rec.GetSerial()) == 0 || rec.GetIssuer() == "" || len(rec.GetPublicKeySha256()) != sha256.Size ||
		rec.GetState() != storev1.CertState_CERT_STATE_PENDING || rec.GetNotBefore() == nil || rec.GetNotAfter() == nil {
		return fmt.Errorf("store: reserve responder: %w: serial, issuer, key hash, validity and PENDING state are required", ErrInvalidArgument)
	}
	recs, err := prepareAudit([]*storev1.AuditRecord{audit}, true, s.now())
	if err != nil {
		return fmt.Errorf("store: reserve responder: %w", err)
	}
	err = s.write(func(tx engine.Tx) error {
		if v := tx.Bucket(bucketRevokedKeys).Get(rec.PublicKeySha256); v != nil {
			return fmt.Errorf("key %x: %w (responder certificate %x)", rec.PublicKeySha256, ErrResponderKeyRevoked, v)
		}
		if tx.Bucket(bucketResponders).Get(rec.Serial) != nil || tx.Bucket(bucketCerts).Get(rec.Serial) != nil {
			return fmt.Errorf("%w: %x", ErrSerialTaken, rec.Serial)
		}
		c := proto.CloneOf(rec)
		if c.CreatedAt == nil {
			c.CreatedAt = timestamppb.New(s.now())
		}
		if err := putResponder(tx, c); err != nil {
			return err
		}
		return appendAudit(tx, recs)
	})
	if err != nil {
		return fmt.Errorf("store: reserve responder: %w", err)
	}
	return nil
}

// CompleteResponder stores the signed certificate of a PENDING responder
// record and marks it ISSUED.
func (s *Store) CompleteResponder(serial, der []byte) error {
	err := s.write(func(tx engine.Tx) error {
		rec, err := getResponder(tx, serial)
		if err != nil {
			return err
		}
		if rec.State != storev1.CertState_CERT_STATE_PENDING {
			return fmt.Errorf("%w: responder certificate %x is %s, not pending", ErrInvalidArgument, serial, rec.State)
		}
		rec.State, rec.Der = storev1.CertState_CERT_STATE_ISSUED, bytes.Clone(der)
		return putResponder(tx, rec)
	})
	if err != nil {
		return fmt.Errorf("store: complete responder: %w", err)
	}
	return nil
}

// AbandonResponder marks a PENDING responder record ABANDONED: the issuer
// key did not sign it.
func (s *Store) AbandonResponder(serial []byte) error {
	return s.write(func(tx engine.Tx) error {
		rec, err := getResponder(tx, serial)
		if err != nil || rec.State != storev1.CertState_CERT_STATE_PENDING {
			return err
		}
		rec.State = storev1.CertState_CERT_STATE_ABANDONED
		return putResponder(tx, rec)
	})
}

// AbandonPendingResponders marks ABANDONED every PENDING responder record
// created before before (at start-up: the process that reserved them is
// gone; see AbandonPending for shared stores) and returns how many.
func (s *Store) AbandonPendingResponders(before time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx engine.Tx) error {
		var pending []*storev1.ResponderCertificate
		err := tx.Bucket(bucketResponders).ForEach(func(k, v []byte) error {
			rec := new(storev1.ResponderCertificate)
			if err := proto.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("store is damaged: responder certificate %x: %w", k, err)
			}
			if rec.State == storev1.CertState_CERT_STATE_PENDING && reservedBefore(rec.CreatedAt, before) {
				pending = append(pending, rec)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, rec := range pending {
			rec.State = storev1.CertState_CERT_STATE_ABANDONED
			if err := putResponder(tx, rec); err != nil {
				return err
			}
		}
		n = len(pending)
		return nil
	})
	return n, err
}

// ResponderCertificates calls fn with every responder certificate record,
// by serial.
func (s *Store) ResponderCertificates(fn func(*storev1.ResponderCertificate) error) error {
	return s.db.View(func(tx engine.Tx) error {
		return tx.Bucket(bucketResponders).ForEach(func(k, v []byte) error {
			rec := new(storev1.ResponderCertificate)
			if err := proto.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("store: responder certificate %x: %w", k, err)
			}
			return fn(rec)
		})
	})
}

// RevokeResponder revokes the responder certificate serial and blocks its
// key from being certified again, with an audit record naming actor, in one
// transaction. Revoking it again changes nothing and returns the record.
func (s *Store) RevokeResponder(serial []byte, now time.Time, reason int32, actor string) (*storev1.ResponderCertificate, error) {
	if actor == "" || now.IsZero() {
		return nil, fmt.Errorf("store: revoke responder: %w: actor and time are required", ErrInvalidArgument)
	}
	var out *storev1.ResponderCertificate
	err := s.write(func(tx engine.Tx) error {
		rec, err := getResponder(tx, serial)
		if err != nil {
			return err
		}
		out = rec
		if rec.Revocation != nil {
			return nil
		}
		rec.Revocation = &storev1.Revocation{RevokedAt: timestamppb.New(now), Reason: reason, Cause: "operator"}
		if err := putResponder(tx, rec); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRevokedKeys).Put(rec.PublicKeySha256, bytes.Clone(rec.Serial)); err != nil {
			return err
		}
		return appendAudit(tx, []*storev1.AuditRecord{{Time: timestamppb.New(now), Actor: actor, Action: ActionResponderRevoke,
			Fields: []*storev1.AuditField{{Key: "serial", Value: fmt.Sprintf("%x", rec.Serial)}, {Key: "issuer", Value: rec.Issuer},
				{Key: "replica", Value: rec.Replica}, {Key: "reason", Value: fmt.Sprint(reason)}}}})
	})
	if err != nil {
		return nil, fmt.Errorf("store: revoke responder: %w", err)
	}
	return out, nil
}

// ResponderKeyRevoked says whether a responder certificate of the key with
// this SPKI SHA-256 was revoked.
func (s *Store) ResponderKeyRevoked(spkiSHA256 []byte) (bool, error) {
	var revoked bool
	err := s.db.View(func(tx engine.Tx) error {
		revoked = tx.Bucket(bucketRevokedKeys).Get(spkiSHA256) != nil
		return nil
	})
	return revoked, err
}

func getResponder(tx engine.Tx, serial []byte) (*storev1.ResponderCertificate, error) {
	v := tx.Bucket(bucketResponders).Get(serial)
	if v == nil {
		return nil, fmt.Errorf("responder certificate %x: %w", serial, ErrNotFound)
	}
	rec := new(storev1.ResponderCertificate)
	if err := proto.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("store is damaged: responder certificate %x: %w", serial, err)
	}
	return rec, nil
}

func putResponder(tx engine.Tx, rec *storev1.ResponderCertificate) error {
	v, err := marshal(rec)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketResponders).Put(rec.Serial, v)
}
