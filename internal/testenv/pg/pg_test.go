package pg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCluster: a throwaway server starts, answers psql over its socket
// only (no TCP listener), keeps what was written, and is gone after Stop.
func TestCluster(t *testing.T) {
	c, err := Start("")
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			c.Stop()
		}
	})
	if out, err := c.Psql("postgres", "CREATE DATABASE shomei_test"); err != nil {
		t.Fatalf("create database: %v %s", err, out)
	}
	if out, err := c.Psql("shomei_test", "CREATE TABLE t (n int); INSERT INTO t VALUES (41), (1); SELECT sum(n) FROM t"); err != nil || out != "42" {
		t.Fatalf("psql: %q %v, want 42", out, err)
	}
	if out, err := c.Psql("postgres", "SHOW listen_addresses"); err != nil || out != "" {
		t.Errorf("listen_addresses %q %v: the server must not listen on TCP", out, err)
	}
	if out, err := c.Psql("postgres", "SELECT current_setting('server_encoding')"); err != nil || out != "UTF8" {
		t.Errorf("server_encoding %q %v, want UTF8", out, err)
	}
	if !strings.Contains(c.DSN("shomei_test"), "host="+c.Socket) {
		t.Errorf("DSN %q does not name the socket", c.DSN("shomei_test"))
	}
	if _, err := os.Stat(filepath.Join(c.Socket, ".s.PGSQL.5432")); err != nil {
		t.Errorf("no socket in the cluster's directory: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("the cluster's directory is left behind: %v", err)
	}
	if _, err := c.Psql("postgres", "SELECT 1"); err == nil {
		t.Error("the server still answers after Stop")
	}
}
