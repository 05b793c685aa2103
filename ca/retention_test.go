package ca

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
)

// TestRetentionPurge (rule book §6): issuance records are kept 10 years
// after their certificate's notAfter and purged after, a bounded slice at
// a time that resumes where the last stopped; the audit log names every
// purged serial, and still verifies and explains every certificate.
func TestRetentionPurge(t *testing.T) {
	c := newTestCA(t, caOptions{})
	one := c.mustIssue(t, ceremonyDay, false, request(t, ProfileSign, ProfileAuth))
	req := request(t, ProfileSign, ProfileAuth)
	req.Holder.ID = "holder-2"
	two := c.mustIssue(t, ceremonyDay, false, req)
	if _, err := c.Revoke(context.Background(), serialHex(two.Certificates[0]), 1, ""); err != nil {
		t.Fatal(err)
	}
	all := append(one.Certificates, two.Certificates...)
	var latest time.Time
	for _, rec := range all {
		if rec.NotAfter.AsTime().After(latest) {
			latest = rec.NotAfter.AsTime()
		}
	}
	kept := latest.AddDate(store.RetentionYears, 0, 0)

	// Until 10 years after the last notAfter, the last stays.
	walk := func(now time.Time) (purged int) {
		t.Helper()
		for pass := 0; pass < 20; pass++ {
			res, err := c.store.PurgeExpired(now, 1, 1, "retention-test")
			if err != nil {
				t.Fatal(err)
			}
			if res.Scanned > 1 || res.Purged > 1 {
				t.Fatalf("a slice of scan 1, batch 1 scanned %d and purged %d", res.Scanned, res.Purged)
			}
			purged += res.Purged
			if res.Wrapped {
				return purged
			}
		}
		t.Fatal("the purge never finished a pass")
		return 0
	}
	early := kept.Add(-time.Second)
	past := 0
	for _, rec := range all {
		if rec.NotAfter.AsTime().AddDate(store.RetentionYears, 0, 0).Before(early) {
			past++
		}
	}
	if n := walk(early); n != past {
		t.Fatalf("one second before the last record's retention ends, %d purged, want %d", n, past)
	}
	if _, err := c.store.Certificate(all[0].Serial); err != nil && all[0].NotAfter.AsTime().Equal(latest) {
		t.Fatalf("a certificate still in retention was purged: %v", err)
	}
	walk(kept.Add(time.Second))
	for _, rec := range all {
		if _, err := c.store.Certificate(rec.Serial); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("certificate %s after retention: %v, want ErrNotFound", serialHex(rec), err)
		}
	}
	if got := c.holderCerts(t, "holder-1"); len(got) != 0 {
		t.Errorf("holder-1's index still lists %d certificates", len(got))
	}
	// The log names each purged serial once, verifies, and explains the
	// store (nothing issued is missing without a purge record).
	named := map[string]int{}
	if err := c.store.AuditRecords(func(r *storev1.AuditRecord) error {
		if r.Action == store.ActionPurge {
			for _, f := range r.Fields {
				if f.Key == "serials" {
					for _, s := range strings.Split(f.Value, ",") {
						named[s]++
					}
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, rec := range all {
		if named[serialHex(rec)] != 1 {
			t.Errorf("the audit log names purged serial %s %d times, want once", serialHex(rec), named[serialHex(rec)])
		}
	}
	if _, err := c.store.VerifyAudit(); err != nil {
		t.Errorf("audit chain after the purge: %v", err)
	}
	if _, err := c.store.ReconcileAudit(); err != nil {
		t.Errorf("reconcile after the purge: %v", err)
	}
	// The keys stay used: a purged certificate's key is never certified
	// again (R-P1).
	for _, rec := range all {
		if used, err := c.store.KeyCertified(rec.PublicKeySha256); err != nil || !used {
			t.Errorf("the key of purged %s is no longer counted as certified (%v, %v)", serialHex(rec), used, err)
		}
	}
}

// TestRetentionBounds: slice sizes outside the store's bounds are
// refused before any work.
func TestRetentionBounds(t *testing.T) {
	c := newTestCA(t, caOptions{})
	for _, b := range []struct{ scan, batch int }{{0, 1}, {1, 0}, {store.MaxPurgeScan + 1, 1}, {1, store.MaxPurgeBatch + 1}, {-1, 5}} {
		if _, err := c.store.PurgeExpired(time.Now(), b.scan, b.batch, "x"); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("PurgeExpired(scan %d, batch %d): %v, want ErrInvalidArgument", b.scan, b.batch, err)
		}
	}
	if _, err := NewRetention(RetentionConfig{Store: c.store, Scan: store.MaxPurgeScan + 1}); err == nil {
		t.Error("NewRetention took a scan over the store's bound")
	}
}
