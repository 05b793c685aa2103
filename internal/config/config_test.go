package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/hsm"
)

const valid = `
store:
  path: data/shomei.db
hsm:
  module: /usr/lib/softhsm/libsofthsm2.so
  module_env:
    SOFTHSM2_CONF: ./softhsm/softhsm2.conf
  token_label: shomei
  pin_file: secrets/pin
  pool_size: 4
  wait_timeout: 2s
issuers:
  key_algorithm: ecdsa-p256
  validity_years: 12
  sign_dn: ["C=JP", "O=Test", "OU=Signature"]
`

// refused checks that valid with each case's extra YAML appended is
// refused by Decode with an error containing its want, one subtest a case.
func refused(t *testing.T, cases map[string]struct{ extra, want string }) {
	t.Helper()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(valid+tc.extra), "/etc/shomei")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDecodeValid(t *testing.T) {
	c, err := Decode(strings.NewReader(valid), "/etc/shomei")
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Path != "/etc/shomei/data/shomei.db" || c.HSM.File != "/etc/shomei/secrets/pin" {
		t.Errorf("relative paths not resolved against the file's directory: %q %q", c.Store.Path, c.HSM.File)
	}
	if c.HSM.ModuleEnv["SOFTHSM2_CONF"] != "/etc/shomei/softhsm/softhsm2.conf" {
		t.Errorf("module_env path not resolved: %q", c.HSM.ModuleEnv["SOFTHSM2_CONF"])
	}
	if sized, err := Decode(strings.NewReader(valid+"certificates:\n  crl_shard_size: 3\n"), "/etc/shomei"); err != nil || sized.Certificates.CRLShardSize != 3 {
		t.Errorf("certificates.crl_shard_size: 3 decodes to %+v, %v", sized, err)
	}
	if c.HSM.PoolSize != 4 || c.HSM.WaitTimeout != 2*time.Second {
		t.Errorf("pool %d wait %v", c.HSM.PoolSize, c.HSM.WaitTimeout)
	}
	ic, err := c.IssuerConfig()
	if err != nil {
		t.Fatal(err)
	}
	if ic.Algorithm != hsm.ECDSAP256 || ic.ValidityYears != 12 || ic.SignDN.String() != "C=JP, O=Test, OU=Signature" {
		t.Errorf("issuer config %+v", ic)
	}
	if ic.AuthDN.String() != "C=JP, O=JPKI, OU=JPKI for user authentication, OU=Japan Agency for Local Authority Information Systems" {
		t.Errorf("AUTH DN does not default to R-P1: %s", ic.AuthDN)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name     string
		old, new string // edit applied to the valid file
		want     string
	}{
		{"unknown key", "  pool_size: 4\n", "  pool_size: 4\n  pin: \"1234\"\n", "field pin not found"},
		{"misspelt section", "issuers:\n", "issuer:\n", "field issuer not found"},
		{"no store path", "  path: data/shomei.db\n", "", "store.path is required (driver bbolt)"},
		{"unknown store driver", "  path: data/shomei.db\n", "  driver: mysql\n  path: data/shomei.db\n", `store.driver "mysql": want bbolt or postgres`},
		{"postgres without a DSN", "  path: data/shomei.db\n", "  driver: postgres\n  spool_dir: spool\n", "store.postgres needs exactly one of dsn_file and dsn_env"},
		{"postgres with both DSNs", "  path: data/shomei.db\n", "  driver: postgres\n  postgres: {dsn_file: f, dsn_env: E}\n  spool_dir: spool\n", "exactly one of dsn_file and dsn_env"},
		{"postgres without a spool", "  path: data/shomei.db\n", "  driver: postgres\n  postgres: {dsn_env: E}\n", "store.spool_dir is required with driver postgres"},
		{"postgres with a bbolt path", "  path: data/shomei.db\n", "  driver: postgres\n  path: data/shomei.db\n  postgres: {dsn_env: E}\n  spool_dir: s\n", "store.path is the bbolt file"},
		{"postgres pool too big", "  path: data/shomei.db\n", "  driver: postgres\n  postgres: {dsn_env: E, max_conns: 5000}\n  spool_dir: s\n", "max_conns 5000 must be 0 (default 8) to 1000"},
		{"postgres lock wait too long", "  path: data/shomei.db\n", "  driver: postgres\n  postgres: {dsn_env: E, lock_timeout: 1h}\n  spool_dir: s\n", "lock_timeout 1h0m0s must be 0 (default 30s) to 10m"},
		{"postgres options on bbolt", "  path: data/shomei.db\n", "  path: data/shomei.db\n  postgres: {dsn_env: E}\n", "store.postgres is for driver postgres"},
		{"both PIN sources", "  pin_file: secrets/pin\n", "  pin_file: secrets/pin\n  pin_env: PIN\n", "exactly one of pin_file and pin_env"},
		{"no PIN source", "  pin_file: secrets/pin\n", "", "exactly one of pin_file and pin_env"},
		{"bad algorithm", "ecdsa-p256", "dsa-1024", `unknown key algorithm "dsa-1024"`},
		{"bad DN", `"O=Test"`, `"Test"`, `issuers.sign_dn: dn: part 2 "Test" is not TYPE=value`},
		{"bad duration", "2s", "two seconds", "line 11: cannot unmarshal"},
		{"negative pool", "pool_size: 4", "pool_size: -1", "pool_size must not be negative"},
		{"empty", valid, "", "empty"},
		{"clients in clear off loopback", "issuers:\n",
			"server:\n  grpc_listen: 0.0.0.0:8443\nclients:\n  - name: kiyose\n    token_file: t\n    municipalities: [\"13221\"]\nissuers:\n",
			"server.tls is required: the API listens on 0.0.0.0:8443, not loopback"},
		{"TLS without a key", "issuers:\n", "server:\n  tls:\n    cert_file: server.pem\nissuers:\n", "server.tls: cert_file and key_file are required"},
		{"negative CRL shard size", "issuers:\n", "certificates:\n  crl_shard_size: -1\nissuers:\n",
			"certificates.crl_shard_size: -1: must be 1 to 1000000 certificates a CRL partition (0: the default, 100000)"},
		{"CRL shard size too large", "issuers:\n", "certificates:\n  crl_shard_size: 1000001\nissuers:\n",
			"certificates.crl_shard_size: 1000001: must be 1 to 1000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(valid, tc.old, tc.new, 1)
			if text == valid {
				t.Fatalf("edit %q does not apply", tc.old)
			}
			_, err := Decode(strings.NewReader(text), "/etc/shomei")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestTLS: paths are resolved against the file's directory; clients on
// loopback, or off it with TLS, are fine; the files are read by GRPCTLS.
func TestTLS(t *testing.T) {
	for _, extra := range []string{
		"server:\n  grpc_listen: 127.0.0.1:8443\nclients:\n  - name: kiyose\n    token_file: t\n    municipalities: [\"13221\"]\n",
		"server:\n  grpc_listen: 0.0.0.0:8443\n  tls:\n    cert_file: tls/server.pem\n    key_file: tls/key.pem\n" +
			"clients:\n  - name: kiyose\n    token_file: t\n    municipalities: [\"13221\"]\n",
	} {
		c, err := Decode(strings.NewReader(valid+extra), "/etc/shomei")
		if err != nil {
			t.Fatalf("%q: %v", extra, err)
		}
		if c.Server.TLS != nil && (c.Server.TLS.CertFile != "/etc/shomei/tls/server.pem" || c.Server.TLS.KeyFile != "/etc/shomei/tls/key.pem") {
			t.Errorf("TLS paths not resolved: %+v", c.Server.TLS)
		}
	}
	c, err := Decode(strings.NewReader(valid+"server:\n  tls:\n    cert_file: missing.pem\n    key_file: missing-key.pem\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GRPCTLS(); err == nil || !strings.Contains(err.Error(), "server.tls.cert_file") {
		t.Errorf("GRPCTLS with missing files = %v, want an error naming server.tls.cert_file", err)
	}
	if conf, err := (&Config{}).GRPCTLS(); conf != nil || err != nil {
		t.Errorf("GRPCTLS without server.tls = %v, %v; want nil, nil", conf, err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "0.0.0.0:1": false, ":8443": false, "10.0.0.1:1": false, "nonsense": false} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) = %t", addr, !want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shomei.yaml")
	if err := os.WriteFile(path, []byte(valid), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != path || c.Store.Path != filepath.Join(dir, "data/shomei.db") {
		t.Errorf("Load: path %q store %q", c.Path, c.Store.Path)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want a not-exist error", err)
	}
}

// TestPostgresStore: a PostgreSQL store's DSN file and spool directory are
// resolved against the file's directory, and the DSN is read from a file
// private to its owner only (it may hold a password) or from the
// environment.
func TestPostgresStore(t *testing.T) {
	dir := t.TempDir()
	text := strings.Replace(valid, "  path: data/shomei.db\n", "  driver: postgres\n  postgres: {dsn_file: pg.dsn}\n  spool_dir: spool\n", 1)
	c, err := Decode(strings.NewReader(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Postgres.DSNFile != filepath.Join(dir, "pg.dsn") || c.Store.SpoolDir != filepath.Join(dir, "spool") {
		t.Errorf("paths not resolved: %q %q", c.Store.Postgres.DSNFile, c.Store.SpoolDir)
	}
	if _, err := c.Store.Postgres.DSN(); err == nil {
		t.Error("a missing DSN file was read")
	}
	if err := os.WriteFile(filepath.Join(dir, "pg.dsn"), []byte("host=/run/postgresql dbname=shomei\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store.Postgres.DSN(); err == nil || !strings.Contains(err.Error(), "dsn_file") {
		t.Errorf("a DSN file others may read: %v, want a refusal naming dsn_file", err)
	}
	os.Chmod(filepath.Join(dir, "pg.dsn"), 0o600)
	if dsn, err := c.Store.Postgres.DSN(); err != nil || dsn != "host=/run/postgresql dbname=shomei" {
		t.Errorf("DSN() = %q, %v", dsn, err)
	}
	t.Setenv("SHOMEI_TEST_DSN", "dbname=x")
	env := &Postgres{DSNEnv: "SHOMEI_TEST_DSN"}
	if dsn, err := env.DSN(); err != nil || dsn != "dbname=x" {
		t.Errorf("DSN() from the environment = %q, %v", dsn, err)
	}
	if _, err := (&Postgres{DSNEnv: "SHOMEI_TEST_UNSET_DSN"}).DSN(); err == nil || !strings.Contains(err.Error(), "SHOMEI_TEST_UNSET_DSN") {
		t.Errorf("an unset DSN variable: %v", err)
	}
}
