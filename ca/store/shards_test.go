package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"github.com/shomei-pki/shomei/internal/testenv/pg"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// inShard is a PENDING record of a new holder in partition.
func inShard(partition string) *storev1.Certificate {
	// A holder of its own: racing callers must never share one.
	rec := pending(fmt.Sprintf("shard-holder-%d", shardHolders.Add(1)), sign)
	rec.CrlPartition = partition
	return rec
}

var shardHolders atomic.Uint64

// shardName names shard n of the test partition as ca names them.
func shardName(n uint32) string {
	if n == 0 {
		return "sign-g1-13221"
	}
	return fmt.Sprintf("sign-g1-13221-s%d", n)
}

// TestCRLShardFull: a partition takes as many certificates as the shard
// size and no more (R-R5); the refusal names the partition, records
// nothing and wraps ErrCRLShardFull; an abandoned certificate keeps its
// place (the count never goes down); OpenCRLShard points at the next
// shard; sizes out of bounds are refused.
func TestCRLShardFull(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		const size = 3
		var first *storev1.Certificate
		for i := range size {
			rec := inShard(shardName(0))
			if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{rec}, Now: t0, CRLShardSize: size}); err != nil {
				t.Fatalf("certificate %d of %d: %v", i+1, size, err)
			}
			if first == nil {
				first = rec
			}
		}
		if err := s.Abandon([][]byte{first.Serial}); err != nil {
			t.Fatal(err)
		}
		over := inShard(shardName(0))
		err := s.Reserve(Reservation{Certs: []*storev1.Certificate{over}, Now: t0, CRLShardSize: size})
		full, ok := errors.AsType[*CRLShardFullError](err)
		if !ok || !errors.Is(err, ErrCRLShardFull) || full.Partition != shardName(0) || full.Certificates != size || full.Size != size {
			t.Fatalf("Reserve of certificate %d = %v, want a CRLShardFullError for %s holding %d of %d", size+1, err, shardName(0), size, size)
		}
		if _, err := s.Certificate(over.Serial); !errors.Is(err, ErrNotFound) {
			t.Errorf("the refused certificate was recorded: %v", err)
		}
		if used, err := s.KeyCertified(over.PublicKeySha256); err != nil || used {
			t.Errorf("the refused certificate's key is recorded as used (%v)", err)
		}
		if n, err := s.CRLShardCount(shardName(0)); err != nil || n != size {
			t.Errorf("CRLShardCount = %d, %v; want %d (abandoned certificates keep their place)", n, err, size)
		}
		if got, err := s.OpenCRLShard(shardName, 0, size); err != nil || got != 1 {
			t.Errorf("OpenCRLShard(from 0, size %d) = %d, %v; want shard 1", size, got, err)
		}
		if got, err := s.OpenCRLShard(shardName, 0, size+1); err != nil || got != 0 {
			t.Errorf("OpenCRLShard(from 0, size %d) = %d, %v; want shard 0, which has room", size+1, got, err)
		}
		// The next shard takes it, as the CA plans it again there.
		over.CrlPartition = shardName(1)
		if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{over}, Now: t0, CRLShardSize: size}); err != nil {
			t.Fatalf("Reserve in shard 1: %v", err)
		}
		if n, err := s.CRLShardCount(shardName(1)); err != nil || n != 1 {
			t.Errorf("CRLShardCount(shard 1) = %d, %v; want 1", n, err)
		}

		for _, bad := range []int{-1, MaxCRLShardSize + 1} {
			err := s.Reserve(Reservation{Certs: []*storev1.Certificate{inShard(shardName(2))}, Now: t0, CRLShardSize: bad})
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), fmt.Sprintf("CRL shard size %d: must be 1 to %d", bad, MaxCRLShardSize)) {
				t.Errorf("Reserve with CRLShardSize %d = %v, want ErrInvalidArgument naming the bounds", bad, err)
			}
			if _, err := s.OpenCRLShard(shardName, 0, bad); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("OpenCRLShard with size %d = %v, want ErrInvalidArgument", bad, err)
			}
		}
		if n, err := s.CRLShardCount(shardName(2)); err != nil || n != 0 {
			t.Errorf("CRLShardCount(shard 2) = %d, %v after refused reservations; want 0", n, err)
		}
	})
}

// TestCRLShardConcurrent: reservations racing for one partition, from
// goroutines of one process and, on PostgreSQL, from two processes' stores
// on one database (each its own connection pool), never put more than the
// shard size in it: the count is checked and written in the reserving
// transaction, and writers run one at a time across processes.
func TestCRLShardConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		stores := []*Store{openTemp(t, be)}
		if be.live {
			stores = append(stores, openTemp(t, be))
		}
		const size, racers = 5, 24
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			accepted int
			errs     []error
		)
		for i := range racers {
			wg.Go(func() {
				s := stores[i%len(stores)]
				err := s.Reserve(Reservation{Certs: []*storev1.Certificate{inShard(shardName(0))}, Now: t0, CRLShardSize: size})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					accepted++
				case !errors.Is(err, ErrCRLShardFull):
					errs = append(errs, err)
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("reservations failed otherwise than on a full shard: %v", errors.Join(errs...))
		}
		if accepted != size {
			t.Errorf("%d of %d racing reservations were recorded in a shard of %d", accepted, racers, size)
		}
		recorded := 0
		if err := stores[0].ForEachCertificate(func(rec *storev1.Certificate) error {
			if rec.CrlPartition == shardName(0) {
				recorded++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := stores[0].CRLShardCount(shardName(0)); err != nil || n != size || recorded != size {
			t.Errorf("the partition has %d certificate records and a count of %d (%v); want %d of each", recorded, n, err, size)
		}
	})
}

// TestCRLShardCountedAtOpen: a store from before shards had no counts; it
// is counted when opened, so a partition that filled before keeps its
// certificates and takes no more than the size. ReconcileAudit finds a
// count lowered behind the store's back.
func TestCRLShardCountedAtOpen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		for range 4 {
			if err := s.Reserve(Reservation{Certs: []*storev1.Certificate{inShard(shardName(0))}, Now: t0}); err != nil {
				t.Fatal(err)
			}
		}
		// As a store written before the counts were kept: no count, no
		// mark that they are kept.
		s = behindBack(t, be, s, func(tx engine.Tx) error {
			meta := tx.Bucket(bucketMeta)
			for _, k := range [][]byte{shardCountKey(shardName(0)), metaShardsCounted} {
				if meta.Get(k) == nil {
					return fmt.Errorf("meta %q is not there to remove", k)
				}
				if err := meta.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if be.live { // behindBack opened bbolt again; open this one again too
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTemp(t, be)
		}
		if n, err := s.CRLShardCount(shardName(0)); err != nil || n != 4 {
			t.Fatalf("CRLShardCount after opening an uncounted store = %d, %v; want the 4 certificates it holds", n, err)
		}
		if _, err := s.ReconcileAudit(); err != nil {
			t.Errorf("ReconcileAudit of the counted store: %v", err)
		}
		err := s.Reserve(Reservation{Certs: []*storev1.Certificate{inShard(shardName(0))}, Now: t0, CRLShardSize: 4})
		if !errors.Is(err, ErrCRLShardFull) {
			t.Errorf("Reserve in the counted, full partition = %v, want ErrCRLShardFull", err)
		}

		// A count lowered behind the store's back would let the shard
		// take more than its size: the audit reconciliation names it.
		s = behindBack(t, be, s, func(tx engine.Tx) error {
			return putShardCount(tx.Bucket(bucketMeta), shardName(0), 1)
		})
		_, err = s.ReconcileAudit()
		if u, ok := errors.AsType[*UnexplainedError](err); !ok ||
			!strings.Contains(u.Reason, "CRL partition sign-g1-13221 names 4 certificates and the partition's shard count says 1") {
			t.Errorf("ReconcileAudit with the count lowered = %v, want an UnexplainedError naming the partition", err)
		}
	})
}

// TestCRLsStoredUncompressed: on PostgreSQL a shard's CRL, written again
// after every revocation in it, is stored out of line and uncompressed
// (migration 0003): psql finds kv_crls.v EXTERNAL, and a CRL saved reads
// back as it was.
func TestCRLsStoredUncompressed(t *testing.T) {
	be := postgresBackend(t)
	s := openTemp(t, be)
	out, err := pg.SharedCluster(t).Psql(be.database(t), `SELECT attstorage FROM pg_attribute WHERE attrelid = 'kv_crls'::regclass AND attname = 'v'`)
	if err != nil || out != "e" {
		t.Fatalf("kv_crls.v storage %q (%v), want e (EXTERNAL)", out, err)
	}
	p := &storev1.CRLPartition{Name: shardName(3), Profile: sign, IssuerGeneration: 1, Url: "http://shomei.example/crl/" + shardName(3) + ".crl",
		DistributionPoint: []string{"CN=清瀬市 CRLDP s3"}}
	if err := s.LoadSyntheticRevocations(p, nil); err != nil {
		t.Fatal(err)
	}
	der := bytes.Repeat([]byte("a CRL of a shard "), 200_000)
	if err := s.SaveCRL(p.Name, 1, t0, t0.Add(24*time.Hour), 1, der); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CRL(p.Name); err != nil || !bytes.Equal(got, der) {
		t.Errorf("the CRL reads back as %d bytes (%v), saved %d", len(got), err, len(der))
	}
}
