package pg

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// The shared cluster of a test binary: started by the first Database and
// stopped by StopShared, which the binary's TestMain calls (testenv.Main
// does) after its tests.
var (
	sharedMu  sync.Mutex
	shared    *Cluster
	sharedErr error
	databases atomic.Int64
)

// Database makes a new, empty database on the test binary's shared
// cluster, starting the cluster on first use, and returns its DSN. A test
// that cannot get one fails: PostgreSQL is part of make test (never
// skipped, issue 12).
func Database(t testing.TB) string {
	t.Helper()
	dsn, err := NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// SharedCluster is the test binary's shared cluster, started on first use.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := sharedCluster()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sharedCluster() (*Cluster, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start("")
	}
	return shared, sharedErr
}

// StopShared stops the shared cluster, if one was started.
func StopShared() error {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		return nil
	}
	err := shared.Stop()
	shared = nil
	return err
}

// NewDatabase is Database for callers without a testing.TB (a TestMain,
// a configuration writer).
func NewDatabase() (string, error) {
	c, err := sharedCluster()
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("shomei_%d", databases.Add(1))
	if out, err := c.Psql("postgres", "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pg: create database %s: %v\n%s", name, err, out)
	}
	return c.DSN(name), nil
}

// StoreEnv is the environment variable that runs a test binary's CA
// stores on PostgreSQL: SHOMEI_TEST_STORE=postgres (make test does, for
// the end-to-end packages, after running everything on bbolt).
const StoreEnv = "SHOMEI_TEST_STORE"

// Postgres says whether this test binary's CA stores are PostgreSQL ones.
func Postgres() bool { return os.Getenv(StoreEnv) == "postgres" }
