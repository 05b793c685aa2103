package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// AuditHead returns the seq of the audit log's last record and the SHA-256
// of its stored bytes (zero for an empty log), after checking that the
// head in meta names it.
func (s *Store) AuditHead() (uint64, [sha256.Size]byte, error) {
	var h auditHead
	err := s.db.View(func(tx engine.Tx) error {
		var err error
		h, err = currentHead(tx)
		return err
	})
	if err != nil {
		return 0, h.hash, fmt.Errorf("store: audit head: %w", err)
	}
	return h.seq, h.hash, nil
}

// SaveAuditCheckpoint stores a signed checkpoint of the audit log (R-K3).
// Its seq must name a stored record whose bytes hash to record_sha256 and
// be past the last checkpoint's. The signature is the caller's (ca/audit);
// the store does not judge it.
func (s *Store) SaveAuditCheckpoint(cp *storev1.AuditCheckpoint) error {
	if cp.GetSeq() == 0 || len(cp.GetRecordSha256()) != sha256.Size || len(cp.GetSignature()) == 0 || cp.GetTime() == nil {
		return fmt.Errorf("store: save audit checkpoint: %w: seq, record hash, time and signature are required", ErrInvalidArgument)
	}
	err := s.db.Update(func(tx engine.Tx) error {
		v := tx.Bucket(bucketAudit).Get(auditKey(cp.Seq))
		if v == nil {
			return fmt.Errorf("%w: audit record %d does not exist", ErrInvalidArgument, cp.Seq)
		}
		if sum := sha256.Sum256(v); !bytes.Equal(sum[:], cp.RecordSha256) {
			return fmt.Errorf("%w: audit record %d does not hash to the checkpoint's record_sha256", ErrInvalidArgument, cp.Seq)
		}
		b := tx.Bucket(bucketCheckpoints)
		if k, _ := b.Cursor().Last(); k != nil && binary.BigEndian.Uint64(k) >= cp.Seq {
			return fmt.Errorf("%w: checkpoint %d is not past the last one (%d)", ErrInvalidArgument, cp.Seq, binary.BigEndian.Uint64(k))
		}
		data, err := marshal(cp)
		if err != nil {
			return err
		}
		return b.Put(auditKey(cp.Seq), data)
	})
	if err != nil {
		return fmt.Errorf("store: save audit checkpoint: %w", err)
	}
	return nil
}

// LastAuditCheckpoint returns the latest checkpoint, or nil when there is
// none.
func (s *Store) LastAuditCheckpoint() (*storev1.AuditCheckpoint, error) {
	var cp *storev1.AuditCheckpoint
	err := s.db.View(func(tx engine.Tx) error {
		_, v := tx.Bucket(bucketCheckpoints).Cursor().Last()
		if v == nil {
			return nil
		}
		cp = new(storev1.AuditCheckpoint)
		return proto.Unmarshal(v, cp)
	})
	return cp, err
}

// AuditStatus is what VerifyAuditCheckpoints found.
type AuditStatus struct {
	// Records is the length of the log.
	Records uint64
	// Checkpoints is how many signed checkpoints verified.
	Checkpoints int
	// Signed is the last record a checkpoint covers; records after it are
	// the unsigned tail (written since the last checkpoint, or after a
	// crash).
	Signed uint64
}

// UnsignedTail is how many records no checkpoint covers.
func (a AuditStatus) UnsignedTail() uint64 { return a.Records - a.Signed }

// VerifyAuditCheckpoints checks, in one read transaction, the hash chain
// (as VerifyAudit) and every checkpoint: the record it names exists (else
// the log was truncated), its stored bytes hash to what the checkpoint
// signed (else records up to it were rewritten), and verify accepts the
// signature. A failure wraps ErrAuditTampered as an *AuditTamperedError.
func (s *Store) VerifyAuditCheckpoints(verify func(*storev1.AuditCheckpoint) error) (AuditStatus, error) {
	var st AuditStatus
	err := s.db.View(func(tx engine.Tx) error {
		last, err := verifyAudit(tx)
		if err != nil {
			return err
		}
		st.Records = last
		audit := tx.Bucket(bucketAudit)
		return tx.Bucket(bucketCheckpoints).ForEach(func(k, v []byte) error {
			cp := new(storev1.AuditCheckpoint)
			if err := proto.Unmarshal(v, cp); err != nil || len(k) != 8 || binary.BigEndian.Uint64(k) != cp.Seq {
				return tampered(st.Signed+1, "checkpoint under key %x does not decode or is misfiled", k)
			}
			if cp.Seq > last {
				return tampered(last+1, "the log was truncated: it ends at record %d, but a checkpoint signed record %d", last, cp.Seq)
			}
			sum := sha256.Sum256(audit.Get(auditKey(cp.Seq)))
			if !bytes.Equal(sum[:], cp.RecordSha256) {
				return tampered(cp.Seq, "records up to %d were rewritten: record %d is not the one the checkpoint of %s signed",
					cp.Seq, cp.Seq, cp.Time.AsTime().UTC().Format("2006-01-02T15:04:05Z"))
			}
			if err := verify(cp); err != nil {
				return tampered(cp.Seq, "the checkpoint of record %d does not verify with the audit key: %v", cp.Seq, err)
			}
			st.Checkpoints++
			st.Signed = cp.Seq
			return nil
		})
	})
	if err != nil {
		if _, ok := errors.AsType[*AuditTamperedError](err); !ok {
			return st, fmt.Errorf("store: verify audit checkpoints: %w", err)
		}
		return st, fmt.Errorf("store: verify audit: %w", err)
	}
	return st, nil
}

// AuditRecordHash returns the SHA-256 of the stored bytes of audit record
// seq, what a checkpoint of it signs; ErrNotFound when the log has no such
// record.
func (s *Store) AuditRecordHash(seq uint64) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	err := s.db.View(func(tx engine.Tx) error {
		v := tx.Bucket(bucketAudit).Get(auditKey(seq))
		if v == nil {
			return fmt.Errorf("%w: audit record %d", ErrNotFound, seq)
		}
		sum = sha256.Sum256(v)
		return nil
	})
	if err != nil {
		return sum, fmt.Errorf("store: audit record hash: %w", err)
	}
	return sum, nil
}
