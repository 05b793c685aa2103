package store

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// TestResponderRecordBeforeSign: a responder certification is recorded,
// with its audit record, before the issuer signs; a process that dies
// between leaves it PENDING, and the next start abandons it, never forgets
// it. Revoking it blocks its key, and the audit log explains every state.
func TestResponderRecordBeforeSign(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := openTest(t, be)
		now := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
		key := sha256.Sum256([]byte("responder key"))
		rec := func(serial byte) *storev1.ResponderCertificate {
			return &storev1.ResponderCertificate{Serial: []byte{serial}, Issuer: "sign-g1", Replica: "replica1", PublicKeySha256: key[:],
				NotBefore: timestamppb.New(now), NotAfter: timestamppb.New(now.Add(24 * time.Hour)), State: storev1.CertState_CERT_STATE_PENDING}
		}
		audit := func(serial string) *storev1.AuditRecord {
			return &storev1.AuditRecord{Actor: "replica:replica1", Action: ActionResponderCertify,
				Fields: []*storev1.AuditField{{Key: "serial", Value: serial}}}
		}
		if err := st.ReserveResponder(rec(1), audit("01")); err != nil {
			t.Fatal(err)
		}
		// The process dies before signing.
		st.Close()
		st = openTest(t, be)
		if n, err := st.AbandonPendingResponders(time.Now().Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("abandoned %d, %v; want the one left pending", n, err)
		}
		if err := st.ReserveResponder(rec(2), audit("02")); err != nil {
			t.Fatal(err)
		}
		if err := st.CompleteResponder([]byte{2}, []byte("der")); err != nil {
			t.Fatal(err)
		}
		var states []storev1.CertState
		st.ResponderCertificates(func(r *storev1.ResponderCertificate) error { states = append(states, r.State); return nil })
		if len(states) != 2 || states[0] != storev1.CertState_CERT_STATE_ABANDONED || states[1] != storev1.CertState_CERT_STATE_ISSUED {
			t.Errorf("responder states %v; want ABANDONED, ISSUED", states)
		}
		if _, err := st.ReconcileAudit(); err != nil {
			t.Errorf("reconcile: %v", err)
		}
		if _, err := st.RevokeResponder([]byte{2}, now, 1, "operator:test"); err != nil {
			t.Fatal(err)
		}
		if err := st.ReserveResponder(rec(3), audit("03")); !errors.Is(err, ErrResponderKeyRevoked) {
			t.Errorf("re-certifying a revoked responder key: %v", err)
		}
		if _, err := st.ReconcileAudit(); err != nil {
			t.Errorf("reconcile after the revocation: %v", err)
		}
	})
}
