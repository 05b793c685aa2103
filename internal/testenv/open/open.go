package open

import (
	"path/filepath"
	"testing"

	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/softhsm"
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

// Store opens a new, empty store, shomei.db in t.TempDir(), closed when t
// ends.
func Store(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "shomei.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
