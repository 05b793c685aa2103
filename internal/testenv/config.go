package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv/pg"
)

// PINFile is the name of the file, next to a configuration, that holds the
// token's PIN (softhsm.TestPIN, written by WritePIN).
const PINFile = "pin"

// HSM is the hsm: section of a Shomei configuration: a token of a SoftHSM2
// directory, its PIN read from PINFile.
type HSM struct {
	Module      string // the SoftHSM2 PKCS#11 module
	SoftHSMConf string // the directory's softhsm2.conf, set as SOFTHSM2_CONF for the module
	Label       string // the token's label
}

// Token is the hsm: section for the token label of dir, on the SoftHSM2
// module of this machine.
func Token(dir *softhsm.Dir, label string) (HSM, error) {
	mod, err := softhsm.Module()
	if err != nil {
		return HSM{}, err
	}
	return HSM{Module: mod, SoftHSMConf: dir.Conf, Label: label}, nil
}

// YAML is the section, at the top level of a configuration.
func (h HSM) YAML() string {
	return fmt.Sprintf(`hsm:
  module: %s
  module_env:
    SOFTHSM2_CONF: %s
  token_label: %s
  pin_file: %s
`, h.Module, h.SoftHSMConf, h.Label, PINFile)
}

// CAConfig is a shomei-ca configuration: its store in shomei.db next to
// it, the token h, both listeners on loopback ports the kernel picks (the
// CA logs them, see CAListening) with the public URL
// http://127.0.0.1:8080, and then extra, more top-level YAML (clients,
// certificates, …).
func CAConfig(h HSM, extra string) string {
	return `store:
  path: shomei.db
` + h.YAML() + `server:
  grpc_listen: 127.0.0.1:0
  http_listen: 127.0.0.1:0
  public_url: http://127.0.0.1:8080
` + extra
}

// Replica is a shomei-ocsp configuration: it follows the CA at CAAddress,
// keeps its copy in replica.db next to it, holds its responder keys in the
// token HSM and serves HTTP on a loopback port the kernel picks (see
// ReplicaListening).
type Replica struct {
	Name      string
	CAAddress string
	// CA is more lines of the ca: section (token_file, TLS files), each
	// indented by two spaces and ending in a newline.
	CA  string
	HSM HSM
	// Extra is more top-level YAML (http_access, …).
	Extra string
}

// YAML is the configuration's text.
func (r Replica) YAML() string {
	return fmt.Sprintf("name: %s\nca:\n  address: %s\n%sstore:\n  path: replica.db\n%shttp_listen: 127.0.0.1:0\n%s",
		r.Name, r.CAAddress, r.CA, r.HSM.YAML(), r.Extra)
}

// WriteFile writes content to dir/name, readable by its owner only, and
// returns the path.
func WriteFile(dir, name, content string) (string, error) {
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, []byte(content), 0o600)
}

// WritePIN writes softhsm.TestPIN to PINFile in dir.
func WritePIN(dir string) error {
	_, err := WriteFile(dir, PINFile, softhsm.TestPIN+"\n")
	return err
}

// WriteCA writes the PIN file and a shomei-ca configuration
// (CAConfig(h, extra)) named shomei.yaml into dir and returns the
// configuration's path. When the test binary runs on PostgreSQL
// (pg.Postgres), the store is a new database on its cluster instead,
// made once per dir (WriteCAPostgres).
func WriteCA(dir string, h HSM, extra string) (string, error) {
	if pg.Postgres() {
		// A configuration written again into the same directory keeps
		// its store, as a bbolt file next to it would be kept.
		dsn, err := os.ReadFile(filepath.Join(dir, "store.dsn"))
		if os.IsNotExist(err) {
			var made string
			made, err = pg.NewDatabase()
			dsn = []byte(made)
		}
		if err != nil {
			return "", err
		}
		return WriteCAPostgres(dir, h, extra, strings.TrimSpace(string(dsn)))
	}
	if err := WritePIN(dir); err != nil {
		return "", err
	}
	return WriteFile(dir, "shomei.yaml", CAConfig(h, extra))
}

// WriteCAPostgres is WriteCA with the store in the PostgreSQL database
// dsn names (in a DSN file store.dsn in dir); several CAs may share it.
func WriteCAPostgres(dir string, h HSM, extra, dsn string) (string, error) {
	if err := WritePIN(dir); err != nil {
		return "", err
	}
	if _, err := WriteFile(dir, "store.dsn", dsn+"\n"); err != nil {
		return "", err
	}
	conf := strings.Replace(CAConfig(h, extra), "store:\n  path: shomei.db\n", PostgresStore("store.dsn"), 1)
	return WriteFile(dir, "shomei.yaml", conf)
}

// PostgresStore is the store: section of a configuration whose store is
// the PostgreSQL database dsnFile names, with its spool directory next to
// the configuration.
func PostgresStore(dsnFile string) string {
	return "store:\n  driver: postgres\n  postgres:\n    dsn_file: " + dsnFile + "\n  spool_dir: spool\n"
}
