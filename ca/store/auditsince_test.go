package store

import (
	"errors"
	"strings"
	"testing"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store/engine"
)

// TestVerifyAuditSince (R-K3): the incremental check the leader makes
// before each checkpoint passes on an intact log and finds a break in what
// follows the checkpointed record, or in that record itself.
func TestVerifyAuditSince(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(tx engine.Tx) error
		wantSeq uint64
		wantIn  string
	}{
		{name: "intact"},
		{
			name: "record after the checkpoint rewritten",
			tamper: func(tx engine.Tx) error {
				return rewrite(tx, 4, func(r *storev1.AuditRecord) { r.Actor = "someone-else" })
			},
			wantSeq: 4, wantIn: "do not hash to the prev_hash of record 5",
		},
		{
			name: "checkpointed record rewritten",
			tamper: func(tx engine.Tx) error {
				return rewrite(tx, 3, func(r *storev1.AuditRecord) { r.Actor = "someone-else" })
			},
			wantSeq: 3, wantIn: "do not match its checkpoint",
		},
		{
			name: "record after the checkpoint removed",
			tamper: func(tx engine.Tx) error {
				return tx.Bucket(bucketAudit).Delete(auditKey(4))
			},
			wantSeq: 4, wantIn: "record 4 is missing",
		},
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				be := be.fresh(t)
				s := openTest(t, be)
				fiveRecords(t, s)
				cp := checkpointOf(t, s, 3)
				if tt.tamper != nil {
					s = behindBack(t, be, s, tt.tamper)
				}
				last, err := s.VerifyAuditSince(cp.Seq, cp.RecordSha256)
				if tt.tamper == nil {
					if err != nil || last != 5 {
						t.Fatalf("VerifyAuditSince on an intact log = %d, %v; want 5, nil", last, err)
					}
					return
				}
				tamper, ok := errors.AsType[*AuditTamperedError](err)
				if !ok || tamper.Seq != tt.wantSeq || !strings.Contains(err.Error(), tt.wantIn) {
					t.Errorf("VerifyAuditSince: %v, want ErrAuditTampered at seq %d mentioning %q", err, tt.wantSeq, tt.wantIn)
				}
			})
		}
	})
	t.Run("arguments", func(t *testing.T) {
		s := openTest(t, boltBackend(t))
		if _, err := s.VerifyAuditSince(0, make([]byte, 32)); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("seq 0: %v, want ErrInvalidArgument", err)
		}
		if _, err := s.VerifyAuditSince(1, []byte{1}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("short hash: %v, want ErrInvalidArgument", err)
		}
	})
}
