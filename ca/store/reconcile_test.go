package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store/engine"
)

// issueAudited is issue with the issuance audit record the CA writes
// (ca/cycle.go auditRecord's fields), so that ReconcileAudit explains it.
func issueAudited(t *testing.T, s *Store, r Reservation) {
	t.Helper()
	issueLogged(t, s, r, func(rec *storev1.Certificate) *storev1.AuditRecord {
		return &storev1.AuditRecord{Actor: "shomei-ca", Action: ActionIssue, Fields: []*storev1.AuditField{
			{Key: "serial", Value: fmt.Sprintf("%x", rec.Serial)},
			{Key: "profile", Value: strings.ToLower(strings.TrimPrefix(rec.Profile.String(), "PROFILE_"))},
			{Key: "issuer_generation", Value: fmt.Sprint(rec.IssuerGeneration)},
			{Key: "municipality", Value: rec.MunicipalityCode},
			{Key: "holder_id", Value: rec.HolderId},
			{Key: "expiry", Value: rec.ExpiryDate},
			{Key: "not_after", Value: rec.NotAfter.AsTime().UTC().Format(time.RFC3339)},
			{Key: "crl_partition", Value: rec.CrlPartition},
		}}
	})
}

// editCert changes the stored record of serial.
func editCert(tx engine.Tx, serial []byte, edit func(*storev1.Certificate)) error {
	b := tx.Bucket(bucketCerts)
	rec, err := getCert(b, serial)
	if err != nil {
		return err
	}
	edit(rec)
	return putCert(b, rec)
}

// TestReconcileAuditTampered (R-K3): every certificate's state is
// explained by the audit log. A change behind the CA's back — a revocation
// cleared or added, a notAfter moved so the revocation drops off the CRL,
// an index entry or a key block removed, a record deleted — made directly
// in the stored data is named by ReconcileAudit with the serial it
// concerns.
func TestReconcileAuditTampered(t *testing.T) {
	const partition = "sign-1-13221"
	// revoked: SIGN of h1, revoked with its key blocked (R-V8); a and b:
	// h2's card, both or neither.
	type certs struct{ revoked, a, b *storev1.Certificate }
	tests := []struct {
		name   string
		tamper func(c certs) func(tx engine.Tx) error
		which  func(c certs) []byte
		wantIn string
	}{
		{
			name: "revocation cleared",
			tamper: func(c certs) func(tx engine.Tx) error {
				return func(tx engine.Tx) error {
					return editCert(tx, c.revoked.Serial, func(r *storev1.Certificate) { r.Revocation = nil })
				}
			},
			which:  func(c certs) []byte { return c.revoked.Serial },
			wantIn: "un-revoked behind the CA's back",
		},
		{
			name: "revocation added",
			tamper: func(c certs) func(tx engine.Tx) error {
				return func(tx engine.Tx) error {
					return editCert(tx, c.b.Serial, func(r *storev1.Certificate) {
						r.Revocation = &storev1.Revocation{RevokedAt: timestamppb.New(t0), Reason: ReasonKeyCompromise}
					})
				}
			},
			which:  func(c certs) []byte { return c.b.Serial },
			wantIn: "no audit record revoked it",
		},
		{
			name: "notAfter moved into the past",
			tamper: func(c certs) func(tx engine.Tx) error {
				return func(tx engine.Tx) error {
					return editCert(tx, c.revoked.Serial, func(r *storev1.Certificate) { r.NotAfter = timestamppb.New(t0.Add(time.Hour)) })
				}
			},
			which:  func(c certs) []byte { return c.revoked.Serial },
			wantIn: "its not_after is",
		},
		{
			name: "CRL index entry removed",
			tamper: func(c certs) func(tx engine.Tx) error {
				return func(tx engine.Tx) error {
					return tx.Bucket(bucketEntries).Delete(append(entryPrefix(partition), c.revoked.Serial...))
				}
			},
			which:  func(c certs) []byte { return c.revoked.Serial },
			wantIn: "has no entry for it",
		},
		{
			name: "key unblocked",
			tamper: func(c certs) func(tx engine.Tx) error {
				return func(tx engine.Tx) error { return tx.Bucket(bucketBlocked).Delete(c.revoked.PublicKeySha256) }
			},
			which:  func(c certs) []byte { return c.revoked.Serial },
			wantIn: "unblocked behind the CA's back",
		},
		{
			name: "holder index entry removed",
			tamper: func(c certs) func(tx engine.Tx) error {
				return func(tx engine.Tx) error {
					return tx.Bucket(bucketHolders).Delete(holderKey(c.b.MunicipalityCode, c.b.HolderId, c.b.Profile, c.b.Serial))
				}
			},
			which:  func(c certs) []byte { return c.b.Serial },
			wantIn: "missing from its holder's index",
		},
		{
			name: "used key freed",
			tamper: func(c certs) func(tx engine.Tx) error {
				return func(tx engine.Tx) error { return tx.Bucket(bucketKeys).Delete(c.a.PublicKeySha256) }
			},
			which:  func(c certs) []byte { return c.a.Serial },
			wantIn: "its key is not recorded as used by it",
		},
		{
			name: "certificate record deleted",
			tamper: func(c certs) func(tx engine.Tx) error {
				return func(tx engine.Tx) error { return tx.Bucket(bucketCerts).Delete(c.a.Serial) }
			},
			which:  func(c certs) []byte { return c.a.Serial },
			wantIn: "no certificate record exists",
		},
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				be := be.fresh(t)
				s := openTemp(t, be)
				var c certs
				c.revoked = pending("h1", sign)
				c.a, c.b = pending("h2", sign), pending("h2", auth)
				c.revoked.CrlPartition, c.a.CrlPartition = partition, partition
				issueAudited(t, s, Reservation{Certs: []*storev1.Certificate{c.revoked}, Now: t0})
				issueAudited(t, s, Reservation{Certs: []*storev1.Certificate{c.a, c.b}, Now: t0})
				at := t0.Add(time.Hour)
				if _, err := s.Revoke(RevokeRequest{Serials: [][]byte{c.revoked.Serial}, Reason: ReasonKeyCompromise, InvalidityDate: at,
					Now: at, BlockKeys: true, Actor: "test", Cause: "loss report"}); err != nil {
					t.Fatal(err)
				}
				if n, err := s.ReconcileAudit(); err != nil || n != 3 {
					t.Fatalf("ReconcileAudit before tampering = %d, %v; want 3, nil", n, err)
				}

				s = behindBack(t, be, s, tt.tamper(c))

				_, err := s.ReconcileAudit()
				bad, ok := errors.AsType[*UnexplainedError](err)
				want := normalSerial(fmt.Sprintf("%x", tt.which(c)))
				if !ok || !errors.Is(err, ErrUnexplained) || bad.Serial != want || !strings.Contains(err.Error(), tt.wantIn) {
					t.Errorf("ReconcileAudit: %v, want ErrUnexplained for serial %s mentioning %q", err, want, tt.wantIn)
				}
				// The audit chain itself is untouched: only reconciliation
				// finds these.
				if _, err := s.VerifyAudit(); err != nil {
					t.Errorf("VerifyAudit: %v", err)
				}
			})
		}
	})
}
