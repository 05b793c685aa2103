package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
)

// WitnessLabel is the CKA_LABEL of the witness: a private data object in
// the HSM holding the latest checkpoint of the audit log.
const WitnessLabel = "shomei-audit-witness"

// witnessApplication is the witness object's CKA_APPLICATION, which names
// its encoding.
const witnessApplication = "shomei audit witness v2"

// witnessMagic starts an encoded witness.
var witnessMagic = []byte("shomei-audit-witness-v2\x00")

// DataObjects is the part of the HSM the witness lives in; *hsm.Token is
// one.
type DataObjects interface {
	ReadData(ctx context.Context, label string) ([]hsm.DataObject, error)
	WriteData(ctx context.Context, obj hsm.DataObject) error
}

var _ DataObjects = (*hsm.Token)(nil)

// Witness is what the HSM holds of the audit log: a checkpoint the CA
// signed, a counter of the witness's writes (the newest is the highest; a
// rollback accepted by an operator moves the checkpoint back but the
// counter on), and whether the log was sealed there. The audit key signs
// all three together.
//
// Sealed: the writer closed the log cleanly at the checkpoint (shomei-ca's
// clean stop, an offline shomeictl command done), so the log ends exactly
// there until a writer opens it again through the HSM (Checkpointer.Open).
// A record after a sealed witness was written by someone without the HSM.
type Witness struct {
	Counter    uint64
	Checkpoint *storev1.AuditCheckpoint
	Sealed     bool
	signature  []byte
}

// Seq is the record the witnessed checkpoint signed.
func (w *Witness) Seq() uint64 { return w.Checkpoint.GetSeq() }

func (w *Witness) String() string {
	s := fmt.Sprintf("a checkpoint of record %d signed %s", w.Seq(), w.Checkpoint.GetTime().AsTime().UTC().Format(time.RFC3339))
	if w.Sealed {
		s += ", sealed"
	}
	return s
}

// ErrWitnessUnreadable: the HSM holds witness objects, but none decodes
// and verifies with the audit key.
var ErrWitnessUnreadable = errors.New("audit: the HSM's witness of the audit log is unreadable")

// ErrRolledBack: the audit log ends before the checkpoint the HSM
// witnessed. Errors wrapping it are *RollbackError.
var ErrRolledBack = errors.New("audit log truncated or rolled back")

// RollbackError says how far the HSM saw the audit log go, and how far it
// goes now. It wraps ErrRolledBack and store.ErrAuditTampered.
type RollbackError struct {
	Witnessed      uint64    // the record the HSM's witness covers
	WitnessedAt    time.Time // when that checkpoint was signed
	LastCheckpoint uint64    // the record the log's last checkpoint covers (0: none)
	Records        uint64    // the length of the log
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("%s: the HSM witnessed a checkpoint of record %d (signed %s), but the log's last checkpoint is of record %d (%d records): "+
		"records and checkpoints after it were deleted, or the store was restored from an older backup (if so, accept it with shomeictl audit verify --accept-rollback)",
		ErrRolledBack, e.Witnessed, e.WitnessedAt.UTC().Format(time.RFC3339), e.LastCheckpoint, e.Records)
}

// Unwrap makes errors.Is hold for ErrRolledBack and store.ErrAuditTampered.
func (e *RollbackError) Unwrap() []error { return []error{ErrRolledBack, store.ErrAuditTampered} }

// witnessFlags encodes Sealed.
func witnessFlags(sealed bool) byte {
	if sealed {
		return 1
	}
	return 0
}

// witnessDigest is what the witness's own signature signs.
func witnessDigest(counter uint64, sealed bool, cp *storev1.AuditCheckpoint) []byte {
	h := sha256.New()
	h.Write(witnessMagic)
	h.Write(binary.BigEndian.AppendUint64(nil, counter))
	h.Write([]byte{witnessFlags(sealed)})
	h.Write(digest(cp))
	return h.Sum(nil)
}

// encodeWitness: magic, counter, flags, length and bytes of the
// checkpoint, and the witness's signature.
func encodeWitness(w *Witness) ([]byte, error) {
	cp, err := proto.MarshalOptions{Deterministic: true}.Marshal(w.Checkpoint)
	if err != nil {
		return nil, err
	}
	out := append(bytes.Clone(witnessMagic), binary.BigEndian.AppendUint64(nil, w.Counter)...)
	out = append(out, witnessFlags(w.Sealed))
	out = binary.BigEndian.AppendUint32(out, uint32(len(cp)))
	out = append(out, cp...)
	return append(out, w.signature...), nil
}

// decodeWitness parses what encodeWitness wrote and checks both signatures
// with pub.
func decodeWitness(b []byte, pub crypto.PublicKey) (*Witness, error) {
	rest, ok := bytes.CutPrefix(b, witnessMagic)
	if !ok || len(rest) < 13 {
		return nil, errors.New("not a v2 witness")
	}
	w := &Witness{Counter: binary.BigEndian.Uint64(rest)}
	switch rest[8] {
	case 0:
	case 1:
		w.Sealed = true
	default:
		return nil, fmt.Errorf("unknown flags %#x", rest[8])
	}
	n := binary.BigEndian.Uint32(rest[9:])
	rest = rest[13:]
	if uint64(n) > uint64(len(rest)) {
		return nil, errors.New("the checkpoint runs past the end")
	}
	w.Checkpoint = new(storev1.AuditCheckpoint)
	if err := proto.Unmarshal(rest[:n], w.Checkpoint); err != nil {
		return nil, fmt.Errorf("the checkpoint does not decode: %w", err)
	}
	w.signature = rest[n:]
	if w.Checkpoint.GetSeq() == 0 || len(w.Checkpoint.GetRecordSha256()) != sha256.Size || w.Checkpoint.GetTime() == nil {
		return nil, errors.New("the checkpoint lacks its record or time")
	}
	if err := VerifyCheckpoint(pub, w.Checkpoint); err != nil {
		return nil, fmt.Errorf("the checkpoint's signature: %w", err)
	}
	if err := verifySignature(pub, witnessDigest(w.Counter, w.Sealed, w.Checkpoint), w.signature); err != nil {
		return nil, fmt.Errorf("the witness's signature: %w", err)
	}
	return w, nil
}

// ReadWitness returns the HSM's witness of the audit log: of the witness
// objects that verify with the audit key pub, the one with the highest
// counter (a crash while one was replaced leaves two). It returns nil when
// the HSM holds none (a store older than the witness, until the CA's next
// start), and ErrWitnessUnreadable when it holds some but none verifies.
func ReadWitness(ctx context.Context, objs DataObjects, pub crypto.PublicKey) (*Witness, error) {
	found, err := objs.ReadData(ctx, WitnessLabel)
	if err != nil {
		return nil, fmt.Errorf("audit: reading the HSM's witness: %w", err)
	}
	if len(found) == 0 {
		return nil, nil
	}
	if pub == nil {
		return nil, fmt.Errorf("%w: the HSM holds %d witness objects (%s) but no audit key (%s)", ErrWitnessUnreadable, len(found), WitnessLabel, KeyLabel)
	}
	var best *Witness
	var bad []error
	for _, o := range found {
		w, err := decodeWitness(o.Value, pub)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", o, err))
			continue
		}
		if best == nil || w.Counter > best.Counter {
			best = w
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: %w", ErrWitnessUnreadable, errors.Join(bad...))
	}
	return best, nil
}

// writeWitness signs and writes a witness of cp with counter, sealed or
// not.
func writeWitness(ctx context.Context, objs DataObjects, signer crypto.Signer, counter uint64, cp *storev1.AuditCheckpoint, sealed bool) (*Witness, error) {
	w := &Witness{Counter: counter, Checkpoint: cp, Sealed: sealed}
	var err error
	if w.signature, err = sign(ctx, signer, witnessDigest(counter, sealed, cp)); err != nil {
		return nil, fmt.Errorf("audit: signing the witness of record %d: %w", cp.Seq, err)
	}
	value, err := encodeWitness(w)
	if err != nil {
		return nil, err
	}
	if err := objs.WriteData(ctx, hsm.DataObject{Label: WitnessLabel, Application: witnessApplication, Value: value}); err != nil {
		return nil, fmt.Errorf("audit: writing the HSM's witness of record %d: %w", cp.Seq, err)
	}
	return w, nil
}

// checkWitnessed checks that a log of records records whose last
// checkpoint covers record signed still holds what w witnessed: record
// w.Seq() with the hash the witnessed checkpoint signed (else the log was
// rewritten), and a checkpoint at or past it (else it was truncated or
// rolled back: a *RollbackError). With signed = records it checks only
// that the log reaches the witness and holds its record.
func checkWitnessed(st *store.Store, w *Witness, records, signed uint64) error {
	if records >= w.Seq() {
		sum, err := st.AuditRecordHash(w.Seq())
		if err != nil {
			return err
		}
		if !bytes.Equal(sum[:], w.Checkpoint.RecordSha256) {
			return fmt.Errorf("store: verify audit: %w", &store.AuditTamperedError{Seq: w.Seq(),
				Reason: fmt.Sprintf("records up to %d were rewritten: record %d is not the one the HSM witnessed (%s)", w.Seq(), w.Seq(), w)})
		}
	}
	if w.Sealed && records > w.Seq() {
		return fmt.Errorf("store: verify audit: %w", &store.AuditTamperedError{Seq: w.Seq() + 1,
			Reason: fmt.Sprintf("records %d to %d were appended after the log was sealed at record %d (%s): only a writer holding the HSM opens a sealed log, "+
				"so they were not written by shomei-ca or shomeictl", w.Seq()+1, records, w.Seq(), w)})
	}
	if signed < w.Seq() {
		return &RollbackError{Witnessed: w.Seq(), WitnessedAt: w.Checkpoint.GetTime().AsTime(), LastCheckpoint: signed, Records: records}
	}
	return nil
}
