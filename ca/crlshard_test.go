package ca

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/store/engine"
	"github.com/shomei-pki/shomei/internal/testenv/pg"
)

// The tests of this file issue with the shared token's SIGN generation 1,
// which TestRetireAndDestroy (rotate_test.go) destroys: they are
// sequential and in a file that sorts before it.

// TestPartitionName: shard 0 of a partition has the name partitions had
// before shards, so certificates and stores from then need no change;
// later shards add -s<n> (R-R5).
func TestPartitionName(t *testing.T) {
	for _, tc := range []struct {
		base  shardBase
		shard uint32
		want  string
	}{
		{shardBase{ProfileSign, 1, "13221"}, 0, "sign-g1-13221"},
		{shardBase{ProfileAuth, 1, "13221"}, 0, "auth-g1-13221"},
		{shardBase{ProfileSign, 1, "13221"}, 1, "sign-g1-13221-s1"},
		{shardBase{ProfileAuth, 12, "01100"}, 10, "auth-g12-01100-s10"},
		{shardBase{ProfileSign, 4294967295, "47381"}, 4294967295, "sign-g4294967295-47381-s4294967295"},
	} {
		if got := tc.base.name(tc.shard); got != tc.want {
			t.Errorf("%+v shard %d: %q, want %q", tc.base, tc.shard, got, tc.want)
		}
	}
}

// TestCRLShardsTwoCAs runs two CAs, as two processes would, each on its
// own connection pool to one PostgreSQL store, issuing AUTH certificates
// of one municipality at once with partitions of two certificates: no
// partition gets more than two, and the shards fill in order, though
// neither CA knows what the other planned (R-R5).
func TestCRLShardsTwoCAs(t *testing.T) {
	tok, keys := issuerToken(t)
	dsn := pg.Database(t)
	var cas []*CA
	var stores []*store.Store
	for i := range 2 {
		st, err := store.OpenPostgres(dsn, store.Options{}, engine.PostgresOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		now := at(t, ceremonyDay)
		if i == 0 {
			if err := st.InitIssuers(keys, []*storev1.AuditRecord{auditOf(now, "test.issuers.copy")}); err != nil {
				t.Fatal(err)
			}
		}
		c, err := New(context.Background(), Config{
			Store: st, Token: tok, Profile: profileConfig(), CRLBaseURL: "http://shomei.example/crl", CRLShardSize: 2,
			AllowECDSAP256: true, Actor: fmt.Sprintf("ca-test-%d", i), Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cas, stores = append(cas, c), append(stores, st)
	}

	const holders = 12
	errs := make([]error, holders)
	var wg sync.WaitGroup
	for i := range holders {
		req := request(t, ProfileAuth)
		req.Holder.ID = fmt.Sprintf("holder-%02d", i)
		wg.Go(func() {
			_, errs[i] = cas[i%2].Issue(context.Background(), req)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("holder %d: %v", i, err)
		}
	}
	got := map[string]int{}
	if err := stores[1].ForEachCertificate(func(rec *storev1.Certificate) error {
		got[rec.CrlPartition]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for n := range uint32(holders / 2) {
		want[shardBase{ProfileAuth, 1, "13221"}.name(n)] = 2
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("certificates by partition: %v, want %v", got, want)
	}
}

// alwaysFull refuses every reservation as if its shard had filled
// meanwhile (another process winning every race), and counts the
// attempts.
type alwaysFull struct {
	Store
	mu       sync.Mutex
	attempts []string // the partition of each refused reservation
}

func (s *alwaysFull) Reserve(r store.Reservation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := r.Certs[0].CrlPartition
	s.attempts = append(s.attempts, p)
	return &store.CRLShardFullError{Partition: p, Certificates: r.CRLShardSize, Size: r.CRLShardSize}
}

// TestCRLShardAttempts: an issuance whose shard is found full plans in the
// next shard each time, and after maxShardAttempts gives up as
// UNAVAILABLE with nothing issued, instead of looping.
func TestCRLShardAttempts(t *testing.T) {
	var full *alwaysFull
	c := newTestCA(t, caOptions{wrap: func(st *store.Store) Store {
		full = &alwaysFull{Store: st}
		return full
	}})
	_, err := c.Issue(context.Background(), request(t, ProfileAuth))
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUnavailable || !errors.Is(err, store.ErrCRLShardFull) {
		t.Fatalf("Issue = %v, want UNAVAILABLE wrapping ErrCRLShardFull", err)
	}
	if len(full.attempts) != maxShardAttempts {
		t.Fatalf("%d reservations, want %d", len(full.attempts), maxShardAttempts)
	}
	for i, p := range full.attempts {
		if want := (shardBase{ProfileAuth, 1, "13221"}).name(uint32(i)); p != want {
			t.Errorf("attempt %d planned in %s, want %s: each attempt the next shard", i+1, p, want)
		}
	}
	if recs := c.holderCerts(t, "holder-1"); len(recs) != 0 {
		t.Errorf("%d certificates recorded, want none", len(recs))
	}
}
