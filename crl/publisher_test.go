package crl_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/crl"
)

// fakeSource is a crl.Source of partitions of revoked certificates, handed
// out one fresh record at a time as the store does.
type fakeSource struct {
	parts   []*storev1.CRLPartition
	entries map[string][]crl.Entry
	mu      sync.Mutex // the publisher's workers save at once
	saved   int        // bytes of the CRLs saved
	// leadingZero writes serials with a leading zero octet.
	leadingZero bool
}

func (s *fakeSource) Partitions() ([]*storev1.CRLPartition, error) { return s.parts, nil }

func (s *fakeSource) PartitionRevocations(name string, _ time.Time, fn func([]byte, time.Time, int32, time.Time) error) (uint64, error) {
	for _, e := range s.entries[name] {
		// A fresh serial each time, overwritten after the call, as the
		// store's is valid only during it.
		serial := e.Serial.Bytes()
		if s.leadingZero {
			serial = append([]byte{0}, serial...)
		}
		err := fn(serial, e.RevokedAt, int32(e.Reason), e.InvalidityDate)
		clear(serial)
		if err != nil {
			return 0, err
		}
	}
	return 1, nil
}

// add makes p one of the source's SIGN partitions, of issuer generation 1,
// changed at revision 1.
func (s *fakeSource) add(p crl.Partition) {
	var dp []string
	for _, a := range p.DistributionPoint {
		dp = append(dp, a.Type+"="+a.Value)
	}
	s.parts = append(s.parts, &storev1.CRLPartition{Name: p.Name, Profile: sign, IssuerGeneration: 1, Url: p.URL,
		DistributionPoint: dp, ChangedRevision: 1})
}

// newPublisher is a publisher of src's partitions, signed by f's issuer,
// with its clock stopped at now.
func newPublisher(tb testing.TB, f *fixture, src *fakeSource, now time.Time) *crl.Publisher {
	tb.Helper()
	pub, err := crl.NewPublisher(crl.PublisherConfig{
		Source: src,
		Issuers: func(storev1.Profile, uint32) (*x509.Certificate, crypto.Signer, error) {
			return f.issuer, f.key, nil
		},
		Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return pub
}

func (s *fakeSource) SaveCRL(_ string, _ uint64, _, _ time.Time, _ uint64, der []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saved += len(der)
	return nil
}

func (s *fakeSource) CRL(string) ([]byte, error) { return nil, nil }

// BenchmarkPublish is BenchmarkPartitionSet through the Publisher: the
// entries come one fresh record at a time from a Source, as the store's,
// and the publisher collects them, so peak-heap-MB includes the request it
// makes and the records (garbage once read), and the CRL it keeps to
// serve. Each partition is published once before the measurement: what is
// measured is the steady state, the entries sized from the partition's
// last CRL (as they are after a restart too, from the stored CRL).
//
//	go test -run '^$' -bench Publish -benchtime 2x ./crl
func BenchmarkPublish(b *testing.B) {
	f := hsmIssuer(b)
	for _, set := range []struct{ partitions, entries int }{{10, 100_000}, {1, 1_000_000}} {
		b.Run(fmt.Sprintf("partitions=%dx%d", set.partitions, set.entries), func(b *testing.B) {
			src := &fakeSource{entries: map[string][]crl.Entry{}}
			for i := range set.partitions {
				p := partition(sign, "sign", fmt.Sprintf("%05d", 13201+i), fmt.Sprintf("市%02d", i))
				src.add(p)
				src.entries[p.Name] = seededEntries(set.entries, byte(i))
			}
			pub := newPublisher(b, f, src, thisUpdate)
			if err := pub.PublishDue(context.Background()); err != nil {
				b.Fatal(err)
			}
			measure(b, func() int {
				for b.Loop() {
					src.saved = 0
					if err := pub.PublishDue(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				return src.saved
			})
		})
	}
}

// TestPublisher publishes partitions through the Publisher and reads each
// CRL back over HTTP: serials of every length (and with a leading zero
// octet, which the store does not write) come out as the store gave them,
// and the CRL is the one Build makes for them.
func TestPublisher(t *testing.T) {
	f := fixtures()[0]
	src := &fakeSource{entries: map[string][]crl.Entry{}}
	for i, p := range []crl.Partition{f.partition, f.other} {
		src.add(p)
		entries := seededEntries(50+i, byte(i))
		for k := range 21 {
			sn := new(big.Int).Lsh(big.NewInt(int64(k+1)), uint(8*k)) // 1 to 21 octets...
			if k == 20 {
				sn = new(big.Int).SetBytes(bytes.Repeat([]byte{0x7f}, 20)) // ...but at most 20
			}
			entries = append(entries, crl.Entry{Serial: sn, RevokedAt: thisUpdate.Add(-time.Hour), Reason: k % 6})
		}
		src.entries[p.Name] = entries
	}
	src.leadingZero = true
	pub := newPublisher(t, f, src, thisUpdate)
	// Twice: the second time, the entries are sized from the first CRL.
	for round := range 2 {
		if err := pub.PublishDue(context.Background()); err != nil {
			t.Fatalf("round %d: PublishDue: %v", round, err)
		}
		for _, p := range []crl.Partition{f.partition, f.other} {
			rec := httptest.NewRecorder()
			pub.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/crl/"+p.Name+".crl", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("round %d: GET %s: %d", round, p.Name, rec.Code)
			}
			req := request(f, src.entries[p.Name])
			req.Partition = p
			req.Number = big.NewInt(1) // the fake store keeps no number
			if err := crl.Check(rec.Body.Bytes(), req); err != nil {
				t.Errorf("round %d: Check: %v", round, err)
			}
		}
	}
}

// TestPublisherWorkers publishes a municipality's twelve shards four at a
// time, each CRL checked as served; a Workers count out of bounds is
// refused. (Run with -race: the workers share the publisher.)
func TestPublisherWorkers(t *testing.T) {
	f := fixtures()[0]
	src := &fakeSource{entries: map[string][]crl.Entry{}}
	shards := []crl.Partition{f.partition}
	for n := range uint32(11) {
		shards = append(shards, shardPartition(f.profile, "sign", "13221", "清瀬市", n+1))
	}
	for i, p := range shards {
		src.add(p)
		src.entries[p.Name] = seededEntries(200+i, byte(i))
	}
	config := func(workers int) crl.PublisherConfig {
		return crl.PublisherConfig{Source: src, Workers: workers, Now: func() time.Time { return thisUpdate },
			Issuers: func(storev1.Profile, uint32) (*x509.Certificate, crypto.Signer, error) { return f.issuer, f.key, nil },
			Log:     slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	for _, bad := range []int{-1, crl.MaxWorkers + 1} {
		if _, err := crl.NewPublisher(config(bad)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("Workers %d: 1 to %d", bad, crl.MaxWorkers)) {
			t.Errorf("NewPublisher with Workers %d: %v, want a refusal naming the bounds", bad, err)
		}
	}
	pub, err := crl.NewPublisher(config(4))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range shards {
		rec := httptest.NewRecorder()
		pub.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/crl/"+p.Name+".crl", nil))
		req := request(f, src.entries[p.Name])
		req.Partition, req.Number = p, big.NewInt(1)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d", p.Name, rec.Code)
		} else if err := crl.Check(rec.Body.Bytes(), req); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
	}
	checkPublished(t, pub, shards, src)
}

// checkPublished: Published lists each of parts once, ordered by name,
// with the URL of its certificates, number 1 (the fake store keeps no
// number), the publisher's clock, its entries and the size of the CRL it
// serves.
func checkPublished(t *testing.T, pub *crl.Publisher, parts []crl.Partition, src *fakeSource) {
	t.Helper()
	got := pub.Published()
	if len(got) != len(parts) {
		t.Fatalf("Published: %d CRLs, want %d", len(got), len(parts))
	}
	byName := map[string]crl.Partition{}
	for _, p := range parts {
		byName[p.Name] = p
	}
	for i, c := range got {
		if i > 0 && got[i-1].Name >= c.Name {
			t.Errorf("Published: %s after %s, want ordered by name", c.Name, got[i-1].Name)
		}
		rec := httptest.NewRecorder()
		pub.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/crl/"+c.Name+".crl", nil))
		p, ok := byName[c.Name]
		switch {
		case !ok:
			t.Errorf("Published: %s, not a partition", c.Name)
		case c.URL != p.URL || c.Number != 1 || !c.ThisUpdate.Equal(thisUpdate) || !c.NextUpdate.Equal(thisUpdate.Add(24*time.Hour)):
			t.Errorf("Published: %s: %+v", c.Name, c)
		case c.Entries != len(src.entries[c.Name]) || c.Bytes != rec.Body.Len():
			t.Errorf("Published: %s: %d entries of %d bytes, want %d of %d", c.Name, c.Entries, c.Bytes, len(src.entries[c.Name]), rec.Body.Len())
		}
	}
}
