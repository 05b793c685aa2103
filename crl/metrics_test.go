package crl_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/crl"
)

// failingSave is a fakeSource whose SaveCRL fails for one partition.
type failingSave struct {
	*fakeSource
	fail string
}

func (s failingSave) SaveCRL(name string, number uint64, thisUpdate, nextUpdate time.Time, revision uint64, der []byte) error {
	if name == s.fail {
		return errors.New("disk full")
	}
	return s.fakeSource.SaveCRL(name, number, thisUpdate, nextUpdate, revision, der)
}

// TestPublisherMetrics: after a publication, each partition published has
// its CRL's entries, size, nextUpdate, publication time and build time;
// one whose CRL could not be stored has a failure and none of those.
func TestPublisherMetrics(t *testing.T) {
	f := fixtures()[0]
	src := &fakeSource{entries: map[string][]crl.Entry{}}
	src.add(f.partition)
	src.add(f.other)
	src.entries[f.partition.Name] = seededEntries(7, 1)
	src.entries[f.other.Name] = seededEntries(3, 2)
	reg := prometheus.NewPedanticRegistry()
	pub, err := crl.NewPublisher(crl.PublisherConfig{
		Source: failingSave{src, f.other.Name},
		Issuers: func(storev1.Profile, uint32) (*x509.Certificate, crypto.Signer, error) {
			return f.issuer, f.key, nil
		},
		Now:     func() time.Time { return thisUpdate },
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishDue(context.Background()); err == nil {
		t.Fatal("PublishDue: no error though a partition's CRL could not be stored")
	}
	rec := httptest.NewRecorder()
	pub.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/crl/"+f.partition.Name+".crl", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d", f.partition.Name, rec.Code)
	}
	got := gaugesByCRL(t, reg)
	ok, failed := got[f.partition.Name], got[f.other.Name]
	want := map[string]float64{
		"shomei_crl_entries":                        7,
		"shomei_crl_bytes":                          float64(rec.Body.Len()),
		"shomei_crl_next_update_timestamp_seconds":  float64(thisUpdate.Add(24 * time.Hour).Unix()),
		"shomei_crl_last_success_timestamp_seconds": float64(thisUpdate.Unix()),
		"shomei_crl_publish_failures_total":         0,
	}
	for name, v := range want {
		if g, present := ok[name]; !present || g != v {
			t.Errorf("%s{crl=%q} = %v (present %v), want %v", name, f.partition.Name, g, present, v)
		}
	}
	if d := ok["shomei_crl_build_duration_seconds"]; d <= 0 {
		t.Errorf("shomei_crl_build_duration_seconds{crl=%q} = %v, want > 0", f.partition.Name, d)
	}
	if failed["shomei_crl_publish_failures_total"] != 1 {
		t.Errorf("shomei_crl_publish_failures_total{crl=%q} = %v, want 1", f.other.Name, failed["shomei_crl_publish_failures_total"])
	}
	for _, name := range []string{"shomei_crl_entries", "shomei_crl_bytes", "shomei_crl_next_update_timestamp_seconds"} {
		if _, present := failed[name]; present {
			t.Errorf("%s{crl=%q} is exported, though the partition has no CRL", name, f.other.Name)
		}
	}
}

// gaugesByCRL is reg's samples of the crl-labelled families, by partition
// and family name.
func gaugesByCRL(t *testing.T, reg *prometheus.Registry) map[string]map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if lp.GetName() != "crl" {
					continue
				}
				if out[lp.GetValue()] == nil {
					out[lp.GetValue()] = map[string]float64{}
				}
				v := m.GetGauge().GetValue()
				if m.Counter != nil {
					v = m.Counter.GetValue()
				}
				out[lp.GetValue()][mf.GetName()] = v
			}
		}
	}
	return out
}
