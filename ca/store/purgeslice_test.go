package store

import (
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
	serials := make([][]byte, n)
	for i := range serials {
		rec := pending(fmt.Sprint("purge-holder-", i), storev1.Profile_PROFILE_AUTH)
		rec.NotBefore, rec.NotAfter = timestamppb.New(issued), timestamppb.New(issued.AddDate(1, 0, 0))
		serials[i] = rec.Serial
		issueLogged(t, s, Reservation{Certs: []*storev1.Certificate{rec}, Now: issued}, func(rec *storev1.Certificate) *storev1.AuditRecord {
			return &storev1.AuditRecord{Actor: "test", Action: ActionIssue, Fields: []*storev1.AuditField{{Key: "serial", Value: fmt.Sprintf("%x", rec.Serial)}}}
		})
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
	for _, serial := range serials {
		if serial := fmt.Sprintf("%x", serial); named[serial] != 1 {
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
