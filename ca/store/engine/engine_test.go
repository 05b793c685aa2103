package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/internal/testenv/pg"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func openBoth(t *testing.T) (*Bolt, *Postgres) {
	t.Helper()
	b, err := OpenBolt(filepath.Join(t.TempDir(), "e.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	p, err := OpenPostgres(pg.Database(t), PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := b.Update(func(tx Tx) error {
		for name := range p.buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b, p
}

// TestEngineDifferential runs the same random operations — puts, deletes,
// gets, and cursor walks in both directions, inside transactions that
// commit or roll back — on bbolt and on PostgreSQL, and requires the same
// answers: the PostgreSQL engine orders, overlays and pages exactly as
// bbolt does.
func TestEngineDifferential(t *testing.T) {
	b, p := openBoth(t)
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() []byte {
		// Short keys from a small alphabet collide, share prefixes and
		// cross the 0x00/0xff edges.
		k := make([]byte, 1+rng.IntN(3))
		for i := range k {
			k[i] = []byte{0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xff}[rng.IntN(7)]
		}
		return k
	}
	bucket := []byte("certs")
	for round := 0; round < 60; round++ {
		ops := make([]func(Tx) string, 0, 40)
		for i := 0; i < 40; i++ {
			k, v := key(), []byte(fmt.Sprintf("v%d.%d", round, i))
			switch rng.IntN(6) {
			case 0, 1:
				ops = append(ops, func(tx Tx) string { return fmt.Sprint(tx.Bucket(bucket).Put(k, v)) })
			case 2:
				ops = append(ops, func(tx Tx) string { return fmt.Sprint(tx.Bucket(bucket).Delete(k)) })
			case 3:
				ops = append(ops, func(tx Tx) string { return fmt.Sprintf("%x", tx.Bucket(bucket).Get(k)) })
			case 4:
				steps := rng.IntN(12)
				dirs := rng.Uint64()
				ops = append(ops, func(tx Tx) string {
					c := tx.Bucket(bucket).Cursor()
					var out bytes.Buffer
					k, v := c.Seek(k)
					fmt.Fprintf(&out, "%x=%s;", k, v)
					for s := 0; s < steps && k != nil; s++ {
						if dirs>>s&1 == 0 {
							k, v = c.Next()
						} else {
							k, v = c.Prev()
						}
						fmt.Fprintf(&out, "%x=%s;", k, v)
					}
					return out.String()
				})
			case 5:
				ops = append(ops, func(tx Tx) string {
					var out bytes.Buffer
					c := tx.Bucket(bucket).Cursor()
					for k, v := c.Last(); k != nil; k, v = c.Prev() {
						fmt.Fprintf(&out, "%x=%s;", k, v)
					}
					n, err := tx.Bucket(bucket).Len()
					fmt.Fprintf(&out, "len %d %v", n, err)
					return out.String()
				})
			}
		}
		rollback := rng.IntN(4) == 0
		run := func(db DB) []string {
			var got []string
			err := db.Update(func(tx Tx) error {
				for _, op := range ops {
					got = append(got, op(tx))
				}
				if rollback {
					return errRollback
				}
				return nil
			})
			if err != nil && !errors.Is(err, errRollback) {
				t.Fatalf("%s: %v", db.Driver(), err)
			}
			var all bytes.Buffer
			if err := db.View(func(tx Tx) error {
				return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
					fmt.Fprintf(&all, "%x=%s;", k, v)
					return nil
				})
			}); err != nil {
				t.Fatalf("%s: %v", db.Driver(), err)
			}
			return append(got, all.String())
		}
		want, got := run(b), run(p)
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("round %d op %d: bbolt %q, postgres %q", round, i, want[i], got[i])
			}
		}
	}
}

var errRollback = errors.New("roll back")

// TestPostgresSnapshot: a snapshot of a PostgreSQL engine is a bbolt file
// with the same keys.
func TestPostgresSnapshot(t *testing.T) {
	_, p := openBoth(t)
	if err := p.Update(func(tx Tx) error {
		for i := 0; i < 3000; i++ {
			if err := tx.Bucket([]byte("audit")).Put([]byte(fmt.Sprintf("%06d", i)), []byte("r")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "snap.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := p.View(func(tx Tx) error { n, err = tx.Snapshot(f); return err }); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st, _ := os.Stat(path); st.Size() != n || n == 0 {
		t.Fatalf("snapshot wrote %d bytes, file has %d", n, st.Size())
	}
	b, err := OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.View(func(tx Tx) error {
		if got, _ := tx.Bucket([]byte("audit")).Len(); got != 3000 {
			t.Errorf("snapshot holds %d audit keys, want 3000", got)
		}
		return nil
	})
}

// TestPostgresReadFailureRollsBack: a read that fails inside Update makes
// Update fail and commit nothing, even when the function ignores it.
func TestPostgresReadFailureRollsBack(t *testing.T) {
	_, p := openBoth(t)
	err := p.Update(func(tx Tx) error {
		tx.Bucket([]byte("certs")).Put([]byte("k"), []byte("v"))
		// Kill this transaction's connection under it: the next read fails.
		tx.(*pgTx).tx.Exec(p.ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
		_ = tx.Bucket([]byte("certs")).Get([]byte("other"))
		return nil
	})
	if err == nil {
		t.Fatal("Update succeeded after a failed read")
	}
	p.View(func(tx Tx) error {
		if v := tx.Bucket([]byte("certs")).Get([]byte("k")); v != nil {
			t.Errorf("the write of a failed transaction is stored: %q", v)
		}
		return nil
	})
}

// TestPostgresLease: one of two processes leads; when the leader's
// connection dies the other leads within seconds, and the old leader is
// told it lost.
func TestPostgresLease(t *testing.T) {
	_, a := openBoth(t)
	dsn := pg.SharedCluster(t).DSN(a.where[len(`postgres database "`):indexOf(a.where, `" on`)])
	b, err := OpenPostgres(dsn, PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	la, err := a.Lead(ctx, "crl")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Lease, 1)
	go func() {
		lb, err := b.Lead(ctx, "crl")
		if err != nil {
			t.Error(err)
		}
		got <- lb
	}()
	select {
	case <-got:
		t.Fatal("two leaders at once")
	case <-time.After(2 * leasePoll):
	}
	// The leader's connection dies, as it does when its process is killed.
	pid := la.(*pgLease).conn.PgConn().PID()
	if _, err := b.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var lb Lease
	select {
	case lb = <-got:
	case <-ctx.Done():
		t.Fatal("the other process never took over")
	}
	select {
	case <-la.Lost():
	case <-time.After(5 * time.Second):
		t.Error("the old leader was not told it lost")
	}
	la.Release()
	lb.Release()
	t.Logf("took over in %s", time.Since(start))
}

func indexOf(s, sub string) int {
	return bytes.Index([]byte(s), []byte(sub))
}

// TestPostgresWatch: a commit to a bucket by one process wakes the
// watchers of that bucket in another at once; a rolled-back write, and a
// write to another bucket, do not.
func TestPostgresWatch(t *testing.T) {
	_, a := openBoth(t)
	name := a.where[len(`postgres database "`):indexOf(a.where, `" on`)]
	b, err := OpenPostgres(pg.SharedCluster(t).DSN(name), PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	woken := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Watch(ctx, []byte("changes"), func() { woken <- struct{}{} })
	}()
	write := func(bucket string, rollback bool) {
		t.Helper()
		err := a.Update(func(tx Tx) error {
			if err := tx.Bucket([]byte(bucket)).Put([]byte("k"), []byte("v")); err != nil {
				return err
			}
			if rollback {
				return errRollback
			}
			return nil
		})
		if err != nil && !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
	}
	// The watcher listens once its connection is up: write until it hears.
	deadline := time.Now().Add(10 * time.Second)
	for heard := false; !heard; {
		write("changes", false)
		select {
		case <-woken:
			heard = true
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("a commit to changes never woke the other process's watcher")
			}
		}
	}
	for len(woken) > 0 {
		<-woken
	}
	write("changes", true)
	write("certs", false)
	write("changes", false)
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("the last commit to changes did not wake the watcher")
	}
	select {
	case <-woken:
		t.Error("a rolled-back write or a write to another bucket woke the watcher")
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	<-done
}
