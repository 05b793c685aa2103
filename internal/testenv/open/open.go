package open

import (
	"path/filepath"
	"testing"

	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/store/engine"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv/pg"
)

// TokenPool opens the test token label, made by testenv.Main, with the
// user PIN and at most poolSize sessions (0: hsm's default). The caller
// closes it.
func TokenPool(label string, poolSize int) (*hsm.Token, error) {
	mod, err := softhsm.Module()
	if err != nil {
		return nil, err
	}
	return hsm.Open(hsm.Config{Module: mod, TokenLabel: label, PIN: softhsm.TestPIN, PoolSize: poolSize})
}

// Token opens the test token label with the user PIN and hsm's default
// session pool, closed when t ends (closing it sooner is allowed: Close
// is idempotent).
func Token(t testing.TB, label string) *hsm.Token {
	t.Helper()
	tok, err := TokenPool(label, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok
}

// Store opens a new, empty store, closed when t ends: shomei.db in
// t.TempDir(), or a new database on the test binary's PostgreSQL cluster
// when the binary runs on PostgreSQL (pg.Postgres).
func Store(t testing.TB) *store.Store {
	t.Helper()
	var st *store.Store
	var err error
	if pg.Postgres() {
		st, err = store.OpenPostgres(pg.Database(t), store.Options{}, engine.PostgresOptions{})
	} else {
		st, err = store.Open(filepath.Join(t.TempDir(), "shomei.db"), store.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
