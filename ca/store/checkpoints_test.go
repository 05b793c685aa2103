package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store/engine"
)

// fiveRecords appends audit records a … e.
func fiveRecords(t *testing.T, s *Store) {
	t.Helper()
	for _, action := range []string{"a", "b", "c", "d", "e"} {
		if err := s.AppendAudit(testAudit(action, "serial", action)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkpointOf is a checkpoint of record seq as the store has it, with a
// stand-in signature that acceptSignature accepts.
func checkpointOf(t *testing.T, s *Store, seq uint64) *storev1.AuditCheckpoint {
	t.Helper()
	sum, err := s.AuditRecordHash(seq)
	if err != nil {
		t.Fatal(err)
	}
	return &storev1.AuditCheckpoint{Seq: seq, RecordSha256: sum[:], Time: timestamppb.New(testNow), KeyLabel: "shomei-audit",
		Signature: []byte("signed")}
}

// acceptSignature stands in for ca/audit's check of a checkpoint's
// signature with the audit key.
func acceptSignature(cp *storev1.AuditCheckpoint) error {
	if string(cp.Signature) != "signed" {
		return errors.New("bad signature")
	}
	return nil
}

// rechain re-links audit records from..last to the stored bytes of the one
// before each, and points the head at last: what someone who rewrote a
// record and knows the chain does to hide it from the chain alone.
func rechain(tx engine.Tx, from, last uint64) error {
	for seq := from; seq <= last; seq++ {
		prev := hashOf(tx, seq-1)
		if err := rewrite(tx, seq, func(r *storev1.AuditRecord) { r.PrevHash = prev }); err != nil {
			return err
		}
	}
	var h auditHead
	h.seq = last
	copy(h.hash[:], hashOf(tx, last))
	return tx.Bucket(bucketMeta).Put(metaAuditHead, encodeAuditHead(h))
}

// TestAuditCheckpoints (R-K3): a checkpoint names a stored record and the
// SHA-256 of its bytes, and each is past the last; VerifyAuditCheckpoints
// checks the chain and every checkpoint, and says how much of the log no
// checkpoint covers yet.
func TestAuditCheckpoints(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTest(t, be)
		if cp, err := s.LastAuditCheckpoint(); err != nil || cp != nil {
			t.Fatalf("LastAuditCheckpoint of a new store = %v, %v; want none", cp, err)
		}
		if st, err := s.VerifyAuditCheckpoints(acceptSignature); err != nil || st != (AuditStatus{}) {
			t.Fatalf("VerifyAuditCheckpoints of a new store = %+v, %v", st, err)
		}
		fiveRecords(t, s)
		if _, err := s.AuditRecordHash(6); !errors.Is(err, ErrNotFound) {
			t.Errorf("AuditRecordHash(6) of a five-record log: %v, want ErrNotFound", err)
		}

		refused := []struct {
			name   string
			cp     func() *storev1.AuditCheckpoint
			wantIn string
		}{
			{"no signature", func() *storev1.AuditCheckpoint {
				cp := checkpointOf(t, s, 3)
				cp.Signature = nil
				return cp
			}, "signature are required"},
			{"seq 0", func() *storev1.AuditCheckpoint {
				cp := checkpointOf(t, s, 3)
				cp.Seq = 0
				return cp
			}, "seq, record hash"},
			{"no such record", func() *storev1.AuditCheckpoint {
				cp := checkpointOf(t, s, 3)
				cp.Seq = 9
				return cp
			}, "audit record 9 does not exist"},
			{"another record's hash", func() *storev1.AuditCheckpoint {
				cp := checkpointOf(t, s, 3)
				cp.Seq = 4
				return cp
			}, "does not hash to the checkpoint's record_sha256"},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				if err := s.SaveAuditCheckpoint(tt.cp()); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.wantIn) {
					t.Errorf("SaveAuditCheckpoint: %v, want ErrInvalidArgument mentioning %q", err, tt.wantIn)
				}
				if cp, err := s.LastAuditCheckpoint(); err != nil || cp != nil {
					t.Errorf("a refused checkpoint was stored: %v, %v", cp, err)
				}
			})
		}

		first := checkpointOf(t, s, 3)
		if err := s.SaveAuditCheckpoint(first); err != nil {
			t.Fatal(err)
		}
		for _, seq := range []uint64{3, 2} {
			if err := s.SaveAuditCheckpoint(checkpointOf(t, s, seq)); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "not past the last one") {
				t.Errorf("checkpoint of record %d after one of 3: %v, want refused", seq, err)
			}
		}
		if cp, err := s.LastAuditCheckpoint(); err != nil || !proto.Equal(cp, first) {
			t.Fatalf("LastAuditCheckpoint = %v, %v; want %v", cp, err, first)
		}
		st, err := s.VerifyAuditCheckpoints(acceptSignature)
		if want := (AuditStatus{Records: 5, Checkpoints: 1, Signed: 3}); err != nil || st != want || st.UnsignedTail() != 2 {
			t.Fatalf("VerifyAuditCheckpoints = %+v, %v; want %+v with 2 unsigned", st, err, want)
		}
		// A checkpoint whose signature does not verify is tampering.
		_, err = s.VerifyAuditCheckpoints(func(*storev1.AuditCheckpoint) error { return errors.New("bad signature") })
		if tamper, ok := errors.AsType[*AuditTamperedError](err); !ok || tamper.Seq != 3 || !strings.Contains(err.Error(), "does not verify with the audit key") {
			t.Errorf("VerifyAuditCheckpoints with a refused signature: %v, want ErrAuditTampered at 3", err)
		}

		if err := s.SaveAuditCheckpoint(checkpointOf(t, s, 5)); err != nil {
			t.Fatal(err)
		}
		if st, err := s.VerifyAuditCheckpoints(acceptSignature); err != nil || st.Checkpoints != 2 || st.UnsignedTail() != 0 {
			t.Errorf("after a checkpoint of the last record: %+v, %v; want 2 checkpoints, nothing unsigned", st, err)
		}
	})
}

// TestAuditCheckpointsTampered (R-K3): the chain and its head are stored
// together, so a rewrite re-chained up to the head, or a log cut short
// with its head moved back, passes VerifyAudit; a checkpoint still finds
// both. Edits are made directly in the stored data.
func TestAuditCheckpointsTampered(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(tx engine.Tx) error
		wantSeq uint64
		wantIn  string
		// chainHolds: the edit passes VerifyAudit, the chain check alone.
		chainHolds bool
	}{
		{
			name: "record under the checkpoint rewritten and re-chained",
			tamper: func(tx engine.Tx) error {
				if err := rewrite(tx, 2, func(r *storev1.AuditRecord) { r.Actor = "someone-else" }); err != nil {
					return err
				}
				return rechain(tx, 3, 5)
			},
			wantSeq:    3,
			wantIn:     "records up to 3 were rewritten",
			chainHolds: true,
		},
		{
			name: "log truncated below the checkpoint",
			tamper: func(tx engine.Tx) error {
				for seq := uint64(3); seq <= 5; seq++ {
					if err := tx.Bucket(bucketAudit).Delete(auditKey(seq)); err != nil {
						return err
					}
				}
				return rechain(tx, 3, 2)
			},
			wantSeq:    3,
			wantIn:     "the log was truncated: it ends at record 2, but a checkpoint signed record 3",
			chainHolds: true,
		},
		{
			name: "checkpoint replaced by garbage",
			tamper: func(tx engine.Tx) error {
				return tx.Bucket(bucketCheckpoints).Put(auditKey(3), []byte{0xff})
			},
			wantSeq: 1,
			wantIn:  "does not decode or is misfiled",
		},
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				be := be.fresh(t)
				s := openTest(t, be)
				fiveRecords(t, s)
				if err := s.SaveAuditCheckpoint(checkpointOf(t, s, 3)); err != nil {
					t.Fatal(err)
				}
				s = behindBack(t, be, s, tt.tamper)

				if _, err := s.VerifyAudit(); tt.chainHolds && err != nil {
					t.Errorf("VerifyAudit: %v; the edit was meant to pass the chain check alone", err)
				}
				_, err := s.VerifyAuditCheckpoints(acceptSignature)
				tamper, ok := errors.AsType[*AuditTamperedError](err)
				if !ok || !errors.Is(err, ErrAuditTampered) || tamper.Seq != tt.wantSeq || !strings.Contains(err.Error(), tt.wantIn) {
					t.Errorf("VerifyAuditCheckpoints: %v, want ErrAuditTampered at seq %d mentioning %q", err, tt.wantSeq, tt.wantIn)
				}
			})
		}
	})
}

// TestAuditRecordHash: the hash a checkpoint signs is the SHA-256 of the
// record's stored bytes, as the next record's prev_hash has it.
func TestAuditRecordHash(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTest(t, be)
		fiveRecords(t, s)
		sum, err := s.AuditRecordHash(2)
		if err != nil {
			t.Fatal(err)
		}
		var next *storev1.AuditRecord
		if err := s.AuditRecords(func(r *storev1.AuditRecord) error {
			if r.Seq == 3 {
				next = r
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(next.GetPrevHash(), sum[:]) || sum == [sha256.Size]byte{} {
			t.Errorf("AuditRecordHash(2) = %x, record 3's prev_hash %x", sum, next.GetPrevHash())
		}
	})
}
