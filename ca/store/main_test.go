package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"github.com/shomei-pki/shomei/internal/testenv/pg"
)

// The tests of this package are the storage contract suite: every rule of
// the CA's state (record before sign, both-or-neither issuance, no double
// issuance, idempotent events, the audit chain and its tamper evidence, …)
// is checked on every engine the store runs on, bbolt and a real
// PostgreSQL server (never mocked, never skipped: issue 12). Only what is
// inherently one engine's (the bbolt file lock and modes, a foreign bbolt
// file; two CA processes on one PostgreSQL database, the rows psql sees)
// is tested on that engine alone.

// TestMain runs the tests, then stops the PostgreSQL cluster the postgres
// backends started (pg.Database), if any.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "ca/store:", err)
	}
	os.Exit(code)
}

// backend is one store location on one engine.
type backend struct {
	// name is the engine, as Store.Driver says it: "bbolt" or "postgres".
	name string
	// loc is where the store is: the bbolt file, or the PostgreSQL DSN.
	loc string
	// open opens the store at loc. Every call opens the same store, so a
	// test can close and open it again, as a CA that restarts does.
	open func(t testing.TB, opts Options) (*Store, error)
	// raw runs fn in a write transaction on the stored data itself,
	// behind the store's back, as someone with access to the disk or the
	// database could; the test fails if fn does. A bbolt store must be
	// closed first (the file is locked); a PostgreSQL one may stay open.
	raw func(t testing.TB, fn func(engine.Tx) error)
	// live says whether raw works while the store is open (PostgreSQL).
	live bool
	// fresh makes another, empty store location on the same engine, for
	// table cases that each need a store of their own.
	fresh func(t testing.TB) backend
}

// engines are the engines of the contract suite, in the order the
// subtests run.
var engines = []struct {
	name  string
	fresh func(t testing.TB) backend
}{
	{"bbolt", boltBackend},
	{"postgres", postgresBackend},
}

// forEachBackend runs body as one subtest per engine ("bbolt",
// "postgres"), each with a new, empty store location.
func forEachBackend(t *testing.T, body func(t *testing.T, be backend)) {
	t.Helper()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { body(t, e.fresh(t)) })
	}
}

// boltBackend is a bbolt file under a directory that does not exist yet
// (Open makes it).
func boltBackend(t testing.TB) backend {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca", "shomei.db")
	return backend{
		name: "bbolt",
		loc:  path,
		open: func(t testing.TB, opts Options) (*Store, error) { return Open(path, opts) },
		raw: func(t testing.TB, fn func(engine.Tx) error) {
			t.Helper()
			db, err := engine.OpenBolt(path, time.Second)
			if err != nil {
				t.Fatalf("raw open of %s (is the store still open?): %v", path, err)
			}
			defer db.Close()
			if err := db.Update(fn); err != nil {
				t.Fatalf("editing %s: %v", path, err)
			}
		},
		fresh: boltBackend,
	}
}

// postgresBackend is a new, empty database on the test binary's shared
// PostgreSQL cluster.
func postgresBackend(t testing.TB) backend {
	t.Helper()
	dsn := pg.Database(t)
	return backend{
		name: "postgres",
		loc:  dsn,
		open: func(t testing.TB, opts Options) (*Store, error) {
			return OpenPostgres(dsn, opts, engine.PostgresOptions{})
		},
		raw: func(t testing.TB, fn func(engine.Tx) error) {
			t.Helper()
			db, err := engine.OpenPostgres(dsn, engine.PostgresOptions{MaxConns: 2})
			if err != nil {
				t.Fatalf("raw open of %s: %v", dsn, err)
			}
			defer db.Close()
			if err := db.Update(fn); err != nil {
				t.Fatalf("editing %s: %v", dsn, err)
			}
		},
		live:  true,
		fresh: postgresBackend,
	}
}

// database is the name of a postgres backend's database, for psql.
func (be backend) database(t testing.TB) string {
	t.Helper()
	for _, f := range strings.Fields(be.loc) {
		if name, ok := strings.CutPrefix(f, "dbname="); ok {
			return name
		}
	}
	t.Fatalf("no dbname in %q", be.loc)
	return ""
}

// openAt opens be's store with its clock pinned at now, and closes it when
// the test ends.
func openAt(t testing.TB, be backend, now time.Time) *Store {
	t.Helper()
	s, err := be.open(t, Options{Timeout: 100 * time.Millisecond, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("open %s store %s: %v", be.name, be.loc, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openTest opens be's store with the clock at testNow (audit and issuer
// tests).
func openTest(t testing.TB, be backend) *Store { return openAt(t, be, testNow) }

// openTemp opens be's store with the clock at t0 (certificate tests).
func openTemp(t testing.TB, be backend) *Store { return openAt(t, be, t0) }

// behindBack runs fn on s's stored data behind its back and returns the
// store to go on with. A bbolt store is closed for the edit (its file is
// locked) and opened again, as after an edit of the file while the CA was
// stopped; a PostgreSQL store stays open, as a CA keeps running while
// someone with access to its database edits the rows: it must read the
// edit, not a copy it remembers.
func behindBack(t testing.TB, be backend, s *Store, fn func(engine.Tx) error) *Store {
	t.Helper()
	if be.live {
		be.raw(t, fn)
		return s
	}
	now := s.now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	be.raw(t, fn)
	return openAt(t, be, now)
}
