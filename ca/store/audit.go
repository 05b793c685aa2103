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

// ErrAuditTampered means the audit log's hash chain does not hold: records
// were rewritten, removed or added behind the store's back. Errors wrapping
// it are *AuditTamperedError and say where.
var ErrAuditTampered = errors.New("audit log tampered")

// AuditTamperedError says where the audit log's chain breaks.
type AuditTamperedError struct {
	// Seq is where the chain breaks. Records 1 … Seq-1 form an unbroken
	// chain; record Seq is missing, unreadable, or not what the record after
	// it (or, for the last record, the head kept in meta) says it was.
	Seq uint64
	// Reason says what does not match.
	Reason string
}

func (e *AuditTamperedError) Error() string {
	return fmt.Sprintf("%s at seq %d: %s", ErrAuditTampered, e.Seq, e.Reason)
}

// Unwrap makes errors.Is(err, ErrAuditTampered) hold.
func (e *AuditTamperedError) Unwrap() error { return ErrAuditTampered }

func tampered(seq uint64, format string, args ...any) *AuditTamperedError {
	return &AuditTamperedError{Seq: seq, Reason: fmt.Sprintf(format, args...)}
}

// AppendAudit appends records to the audit log in one transaction. The store
// assigns seq and prev_hash, which the caller must leave unset, and fills in
// an unset time from Options.Now; the caller's messages are not modified.
// Each record needs an actor and an action. Appending nothing does nothing.
//
// It fails with ErrAuditTampered if the log's last record does not match the
// head kept in meta: the store does not extend a broken chain.
func (s *Store) AppendAudit(recs ...*storev1.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	prepared, err := prepareAudit(recs, false, s.now())
	if err == nil {
		err = s.db.Update(func(tx engine.Tx) error {
			return appendAudit(tx, prepared)
		})
	}
	if err != nil {
		return fmt.Errorf("store: append audit: %w", err)
	}
	return nil
}

// AuditRecords calls fn with each audit record in order, stopping at and
// returning the first error fn returns. fn runs inside a read transaction and
// must not call the store's writing methods.
func (s *Store) AuditRecords(fn func(*storev1.AuditRecord) error) error {
	return s.db.View(func(tx engine.Tx) error {
		return tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
			rec := new(storev1.AuditRecord)
			if err := proto.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("store: audit record under key %x: %w", k, err)
			}
			return fn(rec)
		})
	})
}

// VerifyAudit walks the whole audit log and checks that it is the chain the
// store wrote: seq runs 1, 2, … without gaps, each record's prev_hash is the
// SHA-256 of the stored bytes of the record before it (the first has none),
// and the head kept in meta names the last record and its hash, so a removed
// or rewritten last record is found too.
//
// It returns the number of records. If the chain breaks, the error wraps
// ErrAuditTampered as an *AuditTamperedError saying at which Seq, and n is
// the length of the unbroken chain before it (Seq-1).
func (s *Store) VerifyAudit() (n int, err error) {
	var last uint64
	err = s.db.View(func(tx engine.Tx) error {
		var err error
		last, err = verifyAudit(tx)
		return err
	})
	if tamper, ok := errors.AsType[*AuditTamperedError](err); ok {
		return int(tamper.Seq - 1), fmt.Errorf("store: verify audit: %w", err)
	}
	if err != nil {
		return 0, fmt.Errorf("store: verify audit: %w", err)
	}
	return int(last), nil
}

// verifyAudit checks the chain and returns the seq of the last record.
func verifyAudit(tx engine.Tx) (uint64, error) {
	return verifyAuditFrom(tx, 0, nil)
}

// VerifyAuditSince checks the chain from record seq, whose stored bytes
// must hash to sum (a signed checkpoint's record_sha256), to the head in
// meta: the incremental check of what was appended since a checkpoint.
// It returns the seq of the last record; a break is an
// *AuditTamperedError, as with VerifyAudit.
func (s *Store) VerifyAuditSince(seq uint64, sum []byte) (last uint64, err error) {
	if seq == 0 || len(sum) != sha256.Size {
		return 0, fmt.Errorf("store: verify audit since: %w: a record seq and its SHA-256 are required", ErrInvalidArgument)
	}
	err = s.db.View(func(tx engine.Tx) error {
		var err error
		last, err = verifyAuditFrom(tx, seq, sum)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: verify audit since record %d: %w", seq, err)
	}
	return last, nil
}

// verifyAuditFrom checks the chain from record from (0: the first) whose
// stored bytes hash to fromHash, to the head in meta.
func verifyAuditFrom(tx engine.Tx, from uint64, fromHash []byte) (uint64, error) {
	var (
		last     uint64
		lastHash [sha256.Size]byte
	)
	c := tx.Bucket(bucketAudit).Cursor()
	var k, v []byte
	if from == 0 {
		k, v = c.First()
	} else {
		if k, v = c.Seek(auditKey(from)); k == nil || !bytes.Equal(k, auditKey(from)) {
			return 0, tampered(from, "record %d, signed by a checkpoint, is missing", from)
		}
		if lastHash = sha256.Sum256(v); !bytes.Equal(lastHash[:], fromHash) {
			return 0, tampered(from, "the stored bytes of record %d do not match its checkpoint", from)
		}
		last = from
		k, v = c.Next()
	}
	for ; k != nil; k, v = c.Next() {
		want := last + 1
		seq, ok := decodeAuditKey(k)
		if !ok {
			return 0, tampered(want, "record %d is missing; found a malformed key %x instead", want, k)
		}
		if seq != want {
			return 0, tampered(want, "record %d is missing; the next stored record is %d", want, seq)
		}
		var rec storev1.AuditRecord
		if err := proto.Unmarshal(v, &rec); err != nil {
			return 0, tampered(seq, "record does not decode: %v", err)
		}
		if rec.GetSeq() != seq {
			return 0, tampered(seq, "record stored as %d says it is %d", seq, rec.GetSeq())
		}
		if seq == 1 && len(rec.GetPrevHash()) != 0 {
			return 0, tampered(seq, "the first record has a prev_hash")
		}
		if seq > 1 && !bytes.Equal(rec.GetPrevHash(), lastHash[:]) {
			return 0, tampered(last, "the stored bytes of record %d do not hash to the prev_hash of record %d", last, seq)
		}
		last, lastHash = seq, sha256.Sum256(v)
	}

	raw := tx.Bucket(bucketMeta).Get(metaAuditHead)
	head, ok := decodeAuditHead(raw)
	switch {
	case raw == nil && last == 0:
		return 0, nil
	case raw == nil:
		return 0, tampered(last, "meta holds no head, but the log has records up to %d", last)
	case !ok:
		return 0, tampered(max(last, 1), "the head in meta is unreadable (%x)", raw)
	case head.seq > last:
		return 0, tampered(last+1, "record %d is missing; the head in meta is record %d", last+1, head.seq)
	case head.seq < last:
		return 0, tampered(head.seq+1, "record %d is past the head in meta (record %d)", head.seq+1, head.seq)
	case head.hash != lastHash:
		return 0, tampered(last, "the stored bytes of record %d do not match the head hash in meta", last)
	}
	return last, nil
}

// prepareAudit validates the caller's records and returns the copies to
// append, with time filled in. A key operation (required) needs at least one.
func prepareAudit(recs []*storev1.AuditRecord, required bool, now time.Time) ([]*storev1.AuditRecord, error) {
	if required && len(recs) == 0 {
		return nil, fmt.Errorf("%w: audit: a key operation needs at least one audit record (R-K3)", ErrInvalidArgument)
	}
	out := make([]*storev1.AuditRecord, len(recs))
	for i, r := range recs {
		if err := validateAudit(fmt.Sprintf("audit[%d]", i), r); err != nil {
			return nil, err
		}
		c := proto.CloneOf(r)
		if c.GetTime() == nil {
			c.Time = timestamppb.New(now)
		}
		out[i] = c
	}
	return out, nil
}

// validateAudit checks a caller's record. name says which argument r is, for
// the error.
func validateAudit(name string, r *storev1.AuditRecord) error {
	var problem string
	switch {
	case r == nil:
		problem = " is nil"
	case r.GetSeq() != 0:
		problem = fmt.Sprintf(".seq is set (%d); the store assigns it", r.GetSeq())
	case len(r.GetPrevHash()) != 0:
		problem = ".prev_hash is set; the store assigns it"
	case r.GetActor() == "":
		problem = ".actor is empty"
	case r.GetAction() == "":
		problem = ".action is empty"
	default:
		for i, f := range r.GetFields() {
			if f.GetKey() == "" {
				problem = fmt.Sprintf(".fields[%d].key is empty", i)
				break
			}
		}
		if problem == "" {
			return nil
		}
	}
	return fmt.Errorf("%w: %s%s", ErrInvalidArgument, name, problem)
}

// appendAudit chains recs onto the log and moves the head. recs are the
// store's own copies; appendAudit sets their seq and prev_hash.
func appendAudit(tx engine.Tx, recs []*storev1.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	head, err := currentHead(tx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		r.Seq = head.seq + 1
		r.PrevHash = nil
		if head.seq > 0 {
			r.PrevHash = bytes.Clone(head.hash[:])
		}
		data, err := marshal(r)
		if err != nil {
			return fmt.Errorf("encode audit record %d: %w", r.Seq, err)
		}
		if err := tx.Bucket(bucketAudit).Put(auditKey(r.Seq), data); err != nil {
			return err
		}
		head = auditHead{seq: r.Seq, hash: sha256.Sum256(data)}
	}
	return tx.Bucket(bucketMeta).Put(metaAuditHead, encodeAuditHead(head))
}

// currentHead returns the head kept in meta after checking that it names the
// last stored record and its hash. That check is cheap and does not walk the
// chain; only when it fails is the chain walked, to say where it breaks.
func currentHead(tx engine.Tx) (auditHead, error) {
	raw := tx.Bucket(bucketMeta).Get(metaAuditHead)
	k, v := tx.Bucket(bucketAudit).Cursor().Last()
	head, ok := decodeAuditHead(raw)
	seq, _ := decodeAuditKey(k)
	switch {
	case raw == nil && k == nil:
		return auditHead{}, nil
	case ok && k != nil && seq == head.seq && sha256.Sum256(v) == head.hash:
		return head, nil
	}
	if _, err := verifyAudit(tx); err != nil {
		return auditHead{}, err
	}
	return auditHead{}, errors.New("audit log head check failed, yet the chain verifies") // unreachable
}
