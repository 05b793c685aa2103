package store

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// TestPurgeSliceReadThenWrite: a purge slice looks at the certificates in
// a read transaction and purges in a write transaction; a slice that runs
// in between (a new leader's, say) and moves the cursor on makes the first
// one purge nothing, so no certificate is purged, or named by a purge
// record, twice, and the log still explains the store.
func TestPurgeSliceReadThenWrite(t *testing.T) {
	issued := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	s, err := Open(filepath.Join(t.TempDir(), "purge.db"), Options{Now: func() time.Time { return issued }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 3
	for i := range n {
		tbs := []byte{0x30, 0x03, 0x02, 0x01, byte(i + 1)} // SEQUENCE { INTEGER i+1 }
		key := sha256.Sum256([]byte(fmt.Sprint("purge key ", i)))
		rec := &storev1.Certificate{Serial: []byte{0x40, byte(i + 1)}, Profile: storev1.Profile_PROFILE_AUTH, IssuerGeneration: 1,
			MunicipalityCode: "13221", HolderId: fmt.Sprint("purge-holder-", i), State: storev1.CertState_CERT_STATE_PENDING,
			TbsDer: tbs, PublicKeySha256: key[:], NotBefore: timestamppb.New(issued), NotAfter: timestamppb.New(issued.AddDate(1, 0, 0))}
		if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{rec}, Now: issued}); err != nil {
			t.Fatal(err)
		}
		der := append([]byte{0x30, byte(len(tbs) + 5)}, tbs...)
		der = append(der, 0x30, 0x00, 0x03, 0x01, 0x00) // an empty algorithm and signature
		audit := &storev1.AuditRecord{Actor: "test", Action: ActionIssue, Fields: []*storev1.AuditField{{Key: "serial", Value: fmt.Sprintf("%x", rec.Serial)}}}
		if err := s.Complete(Completion{DER: map[string][]byte{string(rec.Serial): der}, Now: issued, Audit: []*storev1.AuditRecord{audit}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ReconcileAudit(); err != nil {
		t.Fatal(err)
	}
	later := issued.AddDate(RetentionYears+2, 0, 0)

	var inner PurgeResult
	afterPurgeRead = func() {
		afterPurgeRead = nil
		if inner, err = s.PurgeExpired(later, n-1, n, "the other slice"); err != nil {
			t.Error(err)
		}
	}
	defer func() { afterPurgeRead = nil }()
	// Both slices look at the first n-1 certificates.
	outer, err := s.PurgeExpired(later, n-1, n, "the first slice")
	if err != nil {
		t.Fatal(err)
	}
	if inner.Purged != n-1 || outer.Purged != 0 || outer.Scanned != 0 {
		t.Errorf("the slice in between purged %d, the first then scanned %d and purged %d; want %d, 0 and 0", inner.Purged, outer.Scanned, outer.Purged, n-1)
	}
	// The pass goes on from where the slice in between stopped.
	res, err := s.PurgeExpired(later, n, n, "the next slice")
	if err != nil || res.Purged != 1 || !res.Wrapped {
		t.Errorf("the next slice: %+v, %v; want the last certificate purged and the pass ended", res, err)
	}
	named := map[string]int{}
	err = s.AuditRecords(func(r *storev1.AuditRecord) error {
		for _, f := range r.Fields {
			if r.Action == ActionPurge && f.Key == "serials" {
				for _, serial := range strings.Split(f.Value, ",") {
					named[serial]++
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if serial := fmt.Sprintf("%x", []byte{0x40, byte(i + 1)}); named[serial] != 1 {
			t.Errorf("purge records name %s %d times, want once", serial, named[serial])
		}
	}
	if _, err := s.ReconcileAudit(); err != nil {
		t.Errorf("reconcile after the purges: %v", err)
	}
	// A new pass finds nothing left.
	if res, err := s.PurgeExpired(later, n, n, "a new pass"); err != nil || res.Purged != 0 || !res.Wrapped {
		t.Errorf("a new pass: %+v, %v", res, err)
	}
}
