package crl_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/store/engine"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/pg"
)

// Benchmarks of CRL shards (R-R5, issue 12) through the whole publishing
// path: a real store (bbolt file, PostgreSQL database), the Publisher
// reading each shard's entries from it, building, signing in SoftHSM2,
// checking and saving every CRL.
//
//	go test -run '^$' -bench 'ShardSet|ShardRevocation' -benchtime 3x -timeout 60m ./crl
//
// BenchmarkShardSet rebuilds ten shards (a municipality's 1,000,000
// revoked certificates) unless -crl.shards says how many: 150 is the
// issue's 15,000,000 entries of a 200 M population, about 6 minutes of
// loading and 3 GB of disk.
//
//	go test -run '^$' -bench 'ShardSet/bbolt' -benchtime 1x -timeout 120m ./crl -args -crl.shards 150

var benchShards = flag.Int("crl.shards", 10, "shards of 100,000 entries BenchmarkShardSet rebuilds (1 to 1000)")

// shardSize is the default CRL shard size (certificates.crl_shard_size).
const shardSize = store.DefaultCRLShardSize

// benchStore opens a new, empty store on engine: a bbolt file, or a
// database of the test binary's PostgreSQL cluster.
func benchStore(b *testing.B, engineName string) *store.Store {
	b.Helper()
	var s *store.Store
	var err error
	switch engineName {
	case "bbolt":
		s, err = store.Open(b.TempDir()+"/shomei.db", store.Options{})
	case "postgres":
		s, err = store.OpenPostgres(pg.Database(b), store.Options{}, engine.PostgresOptions{})
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// loadShards fills shards shards of Kiyose's SIGN partition of f's issuer
// with perShard revoked certificates each, unexpired, revoked before now,
// and returns the partitions.
func loadShards(b *testing.B, s *store.Store, f *fixture, shards, perShard int) []crl.Partition {
	b.Helper()
	notAfter := timestamppb.New(time.Now().AddDate(5, 0, 0))
	var parts []crl.Partition
	for n := range shards {
		p := f.partition
		if n > 0 {
			p = shardPartition(sign, "sign", "13221", "清瀬市", uint32(n))
		}
		parts = append(parts, p)
		entries := make([]*storev1.Certificate, perShard)
		for i, e := range seededEntries(perShard, byte(n)) {
			rev := &storev1.Revocation{RevokedAt: timestamppb.New(e.RevokedAt), Reason: int32(e.Reason)}
			if !e.InvalidityDate.IsZero() {
				rev.InvalidityDate = timestamppb.New(e.InvalidityDate)
			}
			entries[i] = &storev1.Certificate{Serial: e.Serial.Bytes(), NotAfter: notAfter, Revocation: rev}
		}
		if err := s.LoadSyntheticRevocations(storedPartition(p), entries); err != nil {
			b.Fatal(err)
		}
	}
	return parts
}

// storedPartition is p as the store records it.
func storedPartition(p crl.Partition) *storev1.CRLPartition {
	var dp []string
	for _, a := range p.DistributionPoint {
		dp = append(dp, a.Type+"="+a.Value)
	}
	return &storev1.CRLPartition{Name: p.Name, Profile: sign, IssuerGeneration: 1, Url: p.URL, DistributionPoint: dp}
}

// storePublisher publishes s's partitions signed by f's SoftHSM2 key.
func storePublisher(b *testing.B, s *store.Store, f *fixture) *crl.Publisher {
	b.Helper()
	pub, err := crl.NewPublisher(crl.PublisherConfig{
		Source: s,
		Issuers: func(storev1.Profile, uint32) (*x509.Certificate, crypto.Signer, error) {
			return f.issuer, f.key, nil
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	return pub
}

// largestCRL is the size of the largest CRL s keeps of parts, in bytes,
// each checked to list perShard entries.
func largestCRL(b *testing.B, s *store.Store, parts []crl.Partition, perShard int) int {
	b.Helper()
	largest := 0
	for _, p := range parts {
		der, err := s.CRL(p.Name)
		if err != nil {
			b.Fatal(err)
		}
		list, err := x509.ParseRevocationList(der)
		if err != nil || len(list.RevokedCertificateEntries) < perShard {
			b.Fatalf("%s: %d entries (%v), want at least %d", p.Name, len(list.RevokedCertificateEntries), err, perShard)
		}
		largest = max(largest, len(der))
	}
	return largest
}

// BenchmarkShardSet rebuilds the CRL shard set of one municipality's
// 1,000,000 revoked certificates, ten shards of 100,000 (the default
// shard size), from a real store: the issue's "CRL shard set for 1 M
// revoked entries of one municipality: seconds, peak memory, largest CRL
// in bytes". One op publishes every shard (each marked changed first):
// ns/op is the rebuild, peak-heap-MB the most heap held at once beyond
// what was live before, CRL-MB the set's CRLs, largest-CRL-bytes the
// largest shard's CRL.
func BenchmarkShardSet(b *testing.B) {
	f := hsmIssuer(b)
	shards := *benchShards
	if shards < 1 || shards > 1000 {
		b.Fatalf("-crl.shards %d: 1 to 1000", shards)
	}
	for _, engineName := range []string{"bbolt", "postgres"} {
		b.Run(fmt.Sprintf("%s/shards=%dx%d", engineName, shards, shardSize), func(b *testing.B) {
			s := benchStore(b, engineName)
			parts := loadShards(b, s, f, shards, shardSize)
			pub := storePublisher(b, s, f)
			b.ReportAllocs()
			var cpu time.Duration
			measure(b, func() int {
				for b.Loop() {
					b.StopTimer()
					for _, p := range parts { // every shard changed
						if err := s.LoadSyntheticRevocations(storedPartition(p), nil); err != nil {
							b.Fatal(err)
						}
					}
					start := cpuTime()
					b.StartTimer()
					if err := pub.PublishDue(context.Background()); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					cpu += cpuTime() - start
					b.StartTimer()
				}
				total := 0
				for _, p := range parts {
					der, _ := s.CRL(p.Name)
					total += len(der)
				}
				return total
			})
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(largestCRL(b, s, parts, shardSize)), "largest-CRL-bytes")
		})
	}
}

// BenchmarkShardRevocation measures the issue's "one revocation → its
// shard republished": the store holds a municipality's ten shards of
// 100,000 revoked certificates, all published; each op revokes one more
// certificate of shard 1 through the store (a real certificate, reserved,
// completed and revoked as the CA does, outside the timer) and then
// times the Publisher's PublishDue, which republishes that shard alone.
func BenchmarkShardRevocation(b *testing.B) {
	f := hsmIssuer(b)
	const shards = 10
	for _, engineName := range []string{"bbolt", "postgres"} {
		b.Run(fmt.Sprintf("%s/shard=%d", engineName, shardSize), func(b *testing.B) {
			s := benchStore(b, engineName)
			parts := loadShards(b, s, f, shards, shardSize)
			pub := storePublisher(b, s, f)
			if err := pub.PublishDue(context.Background()); err != nil {
				b.Fatal(err)
			}
			shard := parts[1]
			b.ReportAllocs()
			var cpu time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				revokeOne(b, s, shard.Name, i)
				before, err := s.Partition(shard.Name)
				if err != nil {
					b.Fatal(err)
				}
				start := cpuTime()
				b.StartTimer()
				if err := pub.PublishDue(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu += cpuTime() - start
				after, err := s.Partition(shard.Name)
				if err != nil || after.Number != before.Number+1 {
					b.Fatalf("shard %s: CRL number %d after %d (%v): not republished", shard.Name, after.GetNumber(), before.Number, err)
				}
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
			for _, p := range parts {
				rec, err := s.Partition(p.Name)
				if err != nil {
					b.Fatal(err)
				}
				if want := uint64(1); p.Name != shard.Name && rec.Number != want {
					b.Errorf("shard %s was republished (CRL number %d): a revocation in %s must republish that shard alone", p.Name, rec.Number, shard.Name)
				}
			}
		})
	}
}

// cpuTime is the CPU time the process has used, user and system: what an
// op costs whatever else the machine's CPUs are doing (ns/op is wall
// time, and the CPUs are shared).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// revokeOne issues certificate i into partition and revokes it, through
// the store as the CA does (Reserve, Complete, Revoke).
func revokeOne(b *testing.B, s *store.Store, partition string, i int) {
	b.Helper()
	now := time.Now()
	serial := testenv.Serial().Bytes()
	key := sha256.Sum256(serial)
	var tbs cryptobyte.Builder
	tbs.AddASN1(cbasn1.SEQUENCE, func(c *cryptobyte.Builder) { c.AddBytes(serial) })
	tbsDER := tbs.BytesOrPanic()
	var cert cryptobyte.Builder // certificate-shaped: the store reads its TBS back
	cert.AddASN1(cbasn1.SEQUENCE, func(c *cryptobyte.Builder) {
		c.AddBytes(tbsDER)
		c.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
	})
	rec := &storev1.Certificate{
		Serial: serial, Profile: sign, IssuerGeneration: 1, MunicipalityCode: "13221", HolderId: fmt.Sprintf("bench-%d", i),
		State: storev1.CertState_CERT_STATE_PENDING, TbsDer: tbsDER, PublicKeySha256: key[:],
		NotBefore: timestamppb.New(now.Add(-time.Hour)), NotAfter: timestamppb.New(now.AddDate(5, 0, 0)), CrlPartition: partition,
	}
	if err := s.Reserve(store.Reservation{Certs: []*storev1.Certificate{rec}, Now: now}); err != nil {
		b.Fatal(err)
	}
	if err := s.Complete(store.Completion{DER: map[string][]byte{string(serial): cert.BytesOrPanic()}, Now: now}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Revoke(store.RevokeRequest{Serials: [][]byte{serial}, Reason: store.ReasonCessationOfOperation,
		InvalidityDate: now, Now: now, Actor: "bench", Cause: "benchmark"}); err != nil {
		b.Fatal(err)
	}
}
