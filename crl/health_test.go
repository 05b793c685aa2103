package crl_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/crl"
)

// TestPublisherSkipsBadEntriesAndReportsHealth: entries Build would refuse
// (an invalidityDate in year 1000, a certificateHold reason) are left off
// the CRL, counted and named in Health, and every other entry of the
// partition is published; a partition that cannot be published (the HSM
// fails) makes Health fail once it has been stale longer than StaleAfter,
// and a CRL past its nextUpdate does too (R-R4, R-R5).
func TestPublisherSkipsBadEntriesAndReportsHealth(t *testing.T) {
	f := fixtures()[0]
	p := f.partition
	var dp []string
	for _, a := range p.DistributionPoint {
		dp = append(dp, a.Type+"="+a.Value)
	}
	src := &fakeSource{entries: map[string][]crl.Entry{}, parts: []*storev1.CRLPartition{{Name: p.Name, Profile: sign,
		IssuerGeneration: 1, Url: p.URL, DistributionPoint: dp, ChangedRevision: 1}}}
	good := seededEntries(10, 1)
	bad := []crl.Entry{
		{Serial: big.NewInt(0x1000), RevokedAt: thisUpdate.Add(-time.Hour), Reason: 1, InvalidityDate: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Serial: big.NewInt(0x1001), RevokedAt: thisUpdate.Add(-time.Hour), Reason: 6},
	}
	src.entries[p.Name] = append(append([]crl.Entry{}, bad[0]), append(good, bad[1])...)
	now := thisUpdate
	var hsmDown error
	reg := prometheus.NewRegistry()
	pub, err := crl.NewPublisher(crl.PublisherConfig{
		Source: src,
		Issuers: func(storev1.Profile, uint32) (*x509.Certificate, crypto.Signer, error) {
			return f.issuer, f.key, hsmDown
		},
		Now:      func() time.Time { return now },
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:  reg,
		Validity: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishDue(context.Background()); err != nil {
		t.Fatalf("PublishDue with two bad entries: %v", err)
	}
	der := servedCRL(t, pub, p.Name)
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.RevokedCertificateEntries) != len(good) {
		t.Errorf("the CRL lists %d entries, want the %d good ones", len(list.RevokedCertificateEntries), len(good))
	}
	for _, e := range list.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(big.NewInt(0x1000)) == 0 || e.SerialNumber.Cmp(big.NewInt(0x1001)) == 0 {
			t.Errorf("the CRL lists the bad entry %x", e.SerialNumber)
		}
	}
	if n := skippedTotal(t, reg, p.Name); n != 2 {
		t.Errorf("shomei_crl_entries_skipped_total = %v, want 2", n)
	}
	degraded, err := pub.Health(now)
	if err != nil || !strings.Contains(degraded, p.Name) || !strings.Contains(degraded, "2 revoked certificate(s) left off") {
		t.Errorf("Health after skipping: %q, %v; want degraded naming the partition", degraded, err)
	}

	// The HSM fails: not ready once the partition has been due and
	// unpublished for longer than StaleAfter (60 s).
	hsmDown = errors.New("hsm: token unavailable")
	src.parts[0].ChangedRevision, src.parts[0].Revision, src.parts[0].Number = 2, 1, 1
	src.parts[0].NextUpdate = nil
	if err := pub.PublishDue(context.Background()); err == nil {
		t.Fatal("PublishDue with the HSM down succeeded")
	}
	if _, err := pub.Health(now.Add(30 * time.Second)); err != nil {
		t.Errorf("Health 30 s into the failure: %v; want ready still (R-R4 allows 60 s)", err)
	}
	if _, err := pub.Health(now.Add(61 * time.Second)); err == nil || !strings.Contains(err.Error(), "no CRL published for") {
		t.Errorf("Health 61 s into the failure: %v; want not ready, naming the partition", err)
	}
	if _, err := pub.Health(now.Add(2 * time.Hour)); err == nil || !strings.Contains(err.Error(), "ran out") {
		t.Errorf("Health past nextUpdate: %v; want the CRL's expiry named", err)
	}

	// The HSM is back: ready again.
	hsmDown = nil
	now = now.Add(2 * time.Minute)
	if err := pub.PublishDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Health(now); err != nil {
		t.Errorf("Health after a publication: %v", err)
	}
}

// servedCRL is what the publisher serves for a partition.
func servedCRL(t *testing.T, pub *crl.Publisher, name string) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	pub.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/crl/"+name+".crl", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d", name, rec.Code)
	}
	return rec.Body.Bytes()
}

// skippedTotal reads shomei_crl_entries_skipped_total{partition=name}.
func skippedTotal(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "shomei_crl_entries_skipped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "partition" && l.GetValue() == name {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
