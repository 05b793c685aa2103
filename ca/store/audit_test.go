package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store/engine"
)

// TestAppendAudit (R-K3): records are numbered and chained by the store,
// which fills in an unset time and leaves the caller's messages alone; the
// chain as stored links each record to the SHA-256 of the stored bytes of
// the one before, and the head names the last.
func TestAppendAudit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTest(t, be)
		given := testNow.AddDate(0, -1, 0)
		recs := []*storev1.AuditRecord{
			testAudit("issue", "serial", "01"),
			{Actor: "ca", Action: "revoke", Time: timestamppb.New(given), Fields: []*storev1.AuditField{{Key: "reason", Value: "keyCompromise"}}},
		}
		if err := s.AppendAudit(recs...); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		if err := s.AppendAudit(testAudit("crl.sign")); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		if recs[0].Seq != 0 || recs[0].Time != nil {
			t.Error("AppendAudit modified the caller's messages")
		}

		var got []*storev1.AuditRecord
		if err := s.AuditRecords(func(r *storev1.AuditRecord) error {
			got = append(got, r)
			return nil
		}); err != nil {
			t.Fatalf("AuditRecords: %v", err)
		}
		wantActions := []string{"issue", "revoke", "crl.sign"}
		if len(got) != len(wantActions) {
			t.Fatalf("got %d records, want %d", len(got), len(wantActions))
		}
		for i, r := range got {
			if r.GetSeq() != uint64(i+1) || r.GetAction() != wantActions[i] {
				t.Errorf("record %d: seq %d action %q, want seq %d action %q", i, r.GetSeq(), r.GetAction(), i+1, wantActions[i])
			}
		}
		if !got[0].GetTime().AsTime().Equal(testNow) {
			t.Errorf("unset time became %v, want Options.Now %v", got[0].GetTime().AsTime(), testNow)
		}
		if !got[1].GetTime().AsTime().Equal(given) {
			t.Errorf("given time became %v, want %v", got[1].GetTime().AsTime(), given)
		}
		if !proto.Equal(got[1].GetFields()[0], recs[1].GetFields()[0]) {
			t.Errorf("fields = %v, want %v", got[1].GetFields(), recs[1].GetFields())
		}
		if n, err := s.VerifyAudit(); err != nil || n != 3 {
			t.Errorf("VerifyAudit() = %d, %v, want 3, nil", n, err)
		}

		// The chain on disk: no prev_hash on the first record, then the SHA-256
		// of the stored bytes before; the head is the last record's hash.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		be.raw(t, func(tx engine.Tx) error {
			var prev []byte
			for seq := uint64(1); seq <= 3; seq++ {
				raw := tx.Bucket(bucketAudit).Get(auditKey(seq))
				var r storev1.AuditRecord
				if err := proto.Unmarshal(raw, &r); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(r.GetPrevHash(), prev) {
					t.Errorf("record %d prev_hash = %x, want %x", seq, r.GetPrevHash(), prev)
				}
				sum := sha256.Sum256(raw)
				prev = sum[:]
			}
			head, ok := decodeAuditHead(tx.Bucket(bucketMeta).Get(metaAuditHead))
			if !ok || head.seq != 3 || !bytes.Equal(head.hash[:], prev) {
				t.Errorf("head = %d %x (ok %v), want 3 %x", head.seq, head.hash, ok, prev)
			}
			return nil
		})
	})
}

// TestAppendAuditRefused: an incomplete record, or one with fields only the
// store may set, is refused and nothing of the call is stored.
func TestAppendAuditRefused(t *testing.T) {
	tests := []struct {
		name   string
		recs   []*storev1.AuditRecord
		wantIn string
	}{
		{"nil", []*storev1.AuditRecord{testAudit("a"), nil}, "audit[1] is nil"},
		{"seq set", []*storev1.AuditRecord{{Seq: 1, Actor: "a", Action: "b"}}, "audit[0].seq is set (1); the store assigns it"},
		{"prev_hash set", []*storev1.AuditRecord{{PrevHash: make([]byte, 32), Actor: "a", Action: "b"}}, "audit[0].prev_hash is set"},
		{"no actor", []*storev1.AuditRecord{{Action: "b"}}, "audit[0].actor is empty"},
		{"no action", []*storev1.AuditRecord{testAudit("a"), {Actor: "a"}}, "audit[1].action is empty"},
		{"field without key", []*storev1.AuditRecord{testAudit("a", "serial", "01", "", "x")}, "audit[0].fields[1].key is empty"},
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := openTest(t, be.fresh(t))
				err := s.AppendAudit(tt.recs...)
				if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.wantIn) {
					t.Fatalf("AppendAudit: %v, want ErrInvalidArgument mentioning %q", err, tt.wantIn)
				}
				if n := auditCount(t, s); n != 0 {
					t.Errorf("refused AppendAudit stored %d records", n)
				}
			})
		}
	})
}

// TestAppendAuditNothing: appending nothing does nothing.
func TestAppendAuditNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTest(t, be)
		if err := s.AppendAudit(); err != nil {
			t.Fatalf("AppendAudit(): %v", err)
		}
		if n := auditCount(t, s); n != 0 {
			t.Errorf("AppendAudit() stored %d records", n)
		}
	})
}

// TestAuditRecordsStops: AuditRecords stops at, and returns, the first
// error of its callback.
func TestAuditRecordsStops(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTest(t, be)
		if err := s.AppendAudit(testAudit("a"), testAudit("b"), testAudit("c")); err != nil {
			t.Fatal(err)
		}
		stop := errors.New("stop")
		calls := 0
		err := s.AuditRecords(func(r *storev1.AuditRecord) error {
			calls++
			if r.GetSeq() == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 2 {
			t.Errorf("AuditRecords: %v after %d calls, want the callback's error after 2", err, calls)
		}
	})
}

// rewrite changes the audit record stored under seq, re-encoding it.
func rewrite(tx engine.Tx, seq uint64, edit func(r *storev1.AuditRecord)) error {
	b := tx.Bucket(bucketAudit)
	var r storev1.AuditRecord
	if err := proto.Unmarshal(b.Get(auditKey(seq)), &r); err != nil {
		return err
	}
	edit(&r)
	data, err := marshal(&r)
	if err != nil {
		return err
	}
	return b.Put(auditKey(seq), data)
}

func hashOf(tx engine.Tx, seq uint64) []byte {
	sum := sha256.Sum256(tx.Bucket(bucketAudit).Get(auditKey(seq)))
	return sum[:]
}

// storedAudit counts the stored audit records without decoding them.
func storedAudit(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.View(func(tx engine.Tx) error {
		var err error
		n, err = tx.Bucket(bucketAudit).Len()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestVerifyAuditTampered edits a five-record log directly in the stored
// data (the bbolt file; the PostgreSQL rows, while the CA runs) and checks
// that VerifyAudit finds where (R-K3). When the tampering reaches the
// last record or the head, the store also refuses to extend the log (it
// checks only the tail on append); otherwise appending goes on and the break
// stays where it was.
func TestVerifyAuditTampered(t *testing.T) {
	tests := []struct {
		name          string
		tamper        func(tx engine.Tx) error
		wantSeq       uint64
		wantIn        string
		appendRefused bool
	}{
		{
			name: "middle record rewritten",
			tamper: func(tx engine.Tx) error {
				return rewrite(tx, 3, func(r *storev1.AuditRecord) { r.Actor = "someone-else" })
			},
			wantSeq: 3,
			wantIn:  "stored bytes of record 3 do not hash to the prev_hash of record 4",
		},
		{
			name: "middle record rewritten and the next relinked",
			tamper: func(tx engine.Tx) error {
				if err := rewrite(tx, 3, func(r *storev1.AuditRecord) { r.Action = "nothing" }); err != nil {
					return err
				}
				h := hashOf(tx, 3)
				return rewrite(tx, 4, func(r *storev1.AuditRecord) { r.PrevHash = h })
			},
			wantSeq: 4,
			wantIn:  "record 4 do not hash to the prev_hash of record 5",
		},
		{
			name:    "middle record deleted",
			tamper:  func(tx engine.Tx) error { return tx.Bucket(bucketAudit).Delete(auditKey(3)) },
			wantSeq: 3,
			wantIn:  "record 3 is missing; the next stored record is 4",
		},
		{
			name:    "first record deleted",
			tamper:  func(tx engine.Tx) error { return tx.Bucket(bucketAudit).Delete(auditKey(1)) },
			wantSeq: 1,
			wantIn:  "record 1 is missing",
		},
		{
			name:          "last record deleted",
			tamper:        func(tx engine.Tx) error { return tx.Bucket(bucketAudit).Delete(auditKey(5)) },
			wantSeq:       5,
			wantIn:        "record 5 is missing; the head in meta is record 5",
			appendRefused: true,
		},
		{
			name: "last record rewritten",
			tamper: func(tx engine.Tx) error {
				return rewrite(tx, 5, func(r *storev1.AuditRecord) { r.Fields = nil })
			},
			wantSeq:       5,
			wantIn:        "record 5 do not match the head hash",
			appendRefused: true,
		},
		{
			name: "record added behind the store's back",
			tamper: func(tx engine.Tx) error {
				data, err := marshal(&storev1.AuditRecord{Seq: 6, Actor: "x", Action: "y", PrevHash: hashOf(tx, 5)})
				if err != nil {
					return err
				}
				return tx.Bucket(bucketAudit).Put(auditKey(6), data)
			},
			wantSeq:       6,
			wantIn:        "record 6 is past the head in meta (record 5)",
			appendRefused: true,
		},
		{
			name:    "record replaced by garbage",
			tamper:  func(tx engine.Tx) error { return tx.Bucket(bucketAudit).Put(auditKey(2), []byte{0xff}) },
			wantSeq: 2,
			wantIn:  "record does not decode",
		},
		{
			name: "records swapped",
			tamper: func(tx engine.Tx) error {
				b := tx.Bucket(bucketAudit)
				two, three := bytes.Clone(b.Get(auditKey(2))), bytes.Clone(b.Get(auditKey(3)))
				if err := b.Put(auditKey(2), three); err != nil {
					return err
				}
				return b.Put(auditKey(3), two)
			},
			wantSeq: 2,
			wantIn:  "record stored as 2 says it is 3",
		},
		{
			name: "first record given a prev_hash",
			tamper: func(tx engine.Tx) error {
				return rewrite(tx, 1, func(r *storev1.AuditRecord) { r.PrevHash = make([]byte, 32) })
			},
			wantSeq: 1,
			wantIn:  "the first record has a prev_hash",
		},
		{
			name:          "head removed",
			tamper:        func(tx engine.Tx) error { return tx.Bucket(bucketMeta).Delete(metaAuditHead) },
			wantSeq:       5,
			wantIn:        "meta holds no head",
			appendRefused: true,
		},
		{
			name:          "head unreadable",
			tamper:        func(tx engine.Tx) error { return tx.Bucket(bucketMeta).Put(metaAuditHead, []byte("head")) },
			wantSeq:       5,
			wantIn:        "head in meta is unreadable",
			appendRefused: true,
		},
		{
			name: "whole log deleted",
			tamper: func(tx engine.Tx) error {
				b := tx.Bucket(bucketAudit)
				var keys [][]byte
				if err := b.ForEach(func(k, _ []byte) error {
					keys = append(keys, bytes.Clone(k))
					return nil
				}); err != nil {
					return err
				}
				for _, k := range keys {
					if err := b.Delete(k); err != nil {
						return err
					}
				}
				return nil
			},
			wantSeq:       1,
			wantIn:        "record 1 is missing; the head in meta is record 5",
			appendRefused: true,
		},
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				be := be.fresh(t)
				s := openTest(t, be)
				for _, action := range []string{"a", "b", "c", "d", "e"} {
					if err := s.AppendAudit(testAudit(action, "serial", action)); err != nil {
						t.Fatal(err)
					}
				}
				s = behindBack(t, be, s, tt.tamper)

				n, err := s.VerifyAudit()
				if !errors.Is(err, ErrAuditTampered) {
					t.Fatalf("VerifyAudit() = %d, %v, want ErrAuditTampered", n, err)
				}
				tamper, ok := errors.AsType[*AuditTamperedError](err)
				if !ok || tamper.Seq != tt.wantSeq || !strings.Contains(err.Error(), tt.wantIn) {
					t.Errorf("VerifyAudit: %v, want seq %d mentioning %q", err, tt.wantSeq, tt.wantIn)
				}
				if n != int(tt.wantSeq)-1 {
					t.Errorf("VerifyAudit n = %d, want %d intact records", n, tt.wantSeq-1)
				}

				before := storedAudit(t, s)
				err = s.AppendAudit(testAudit("after"))
				if !tt.appendRefused {
					if err != nil {
						t.Fatalf("AppendAudit after tampering behind the tail: %v", err)
					}
					if _, err := s.VerifyAudit(); !strings.Contains(fmt.Sprint(err), tt.wantIn) {
						t.Errorf("VerifyAudit after appending: %v, want still mentioning %q", err, tt.wantIn)
					}
					return
				}
				// The store does not extend a chain whose tail is broken, and
				// says where it breaks.
				if tamper, ok := errors.AsType[*AuditTamperedError](err); !ok || tamper.Seq != tt.wantSeq {
					t.Errorf("AppendAudit on a tampered log: %v, want ErrAuditTampered at seq %d", err, tt.wantSeq)
				}
				if n := storedAudit(t, s); n != before {
					t.Errorf("AppendAudit on a tampered log stored %d records", n-before)
				}
			})
		}
	})
}
