package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/store/engine"
	"github.com/shomei-pki/shomei/internal/secfile"
)

// Store says where the CA's state lives (ca/store): a bbolt file, the
// embedded default, or a PostgreSQL database that several CA processes
// share (issue 12).
type Store struct {
	// Driver is "bbolt" (the default when empty) or "postgres".
	Driver string `yaml:"driver"`
	// Path is the bbolt file (driver bbolt).
	Path string `yaml:"path"`
	// Postgres says which database (driver postgres).
	Postgres *Postgres `yaml:"postgres"`
	// SpoolDir is a private directory for files the CA writes on the way
	// out, such as a backup being sent to an operator. Default: the bbolt
	// file's directory; required with postgres.
	SpoolDir string `yaml:"spool_dir"`
}

// Postgres is a PostgreSQL store's database.
type Postgres struct {
	// The libpq connection string or URL, from a file private to its owner
	// (it may hold a password) or from an environment variable. A
	// password may instead be in the PostgreSQL password file (PGPASSFILE,
	// ~/.pgpass).
	DSNFile string `yaml:"dsn_file"`
	// DSNEnv names the environment variable holding the connection
	// string; exactly one of dsn_file and dsn_env.
	DSNEnv string `yaml:"dsn_env"`
	// MaxConns bounds the connection pool (default 8).
	MaxConns int32 `yaml:"max_conns"`
	// LockTimeout bounds a write's wait for another CA process's write
	// (default 30s).
	LockTimeout time.Duration `yaml:"lock_timeout"`
}

// Drivers.
const (
	DriverBolt     = "bbolt"
	DriverPostgres = "postgres"
)

func (s *Store) resolve(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if s.Driver == "" {
		s.Driver = DriverBolt
	}
	abs(&s.Path)
	abs(&s.SpoolDir)
	if s.Postgres != nil {
		abs(&s.Postgres.DSNFile)
	}
	if s.SpoolDir == "" && s.Path != "" {
		s.SpoolDir = filepath.Dir(s.Path)
	}
}

func (s *Store) validate() []error {
	var errs []error
	switch s.Driver {
	case DriverBolt:
		if s.Path == "" {
			errs = append(errs, errors.New("store.path is required (driver bbolt)"))
		}
		if s.Postgres != nil {
			errs = append(errs, errors.New("store.postgres is for driver postgres; this store's driver is bbolt"))
		}
	case DriverPostgres:
		pg := s.Postgres
		switch {
		case pg == nil || (pg.DSNFile == "") == (pg.DSNEnv == ""):
			errs = append(errs, errors.New("store.postgres needs exactly one of dsn_file and dsn_env (driver postgres)"))
		case pg.MaxConns < 0 || pg.MaxConns > 1000:
			errs = append(errs, fmt.Errorf("store.postgres.max_conns %d must be 0 (default 8) to 1000", pg.MaxConns))
		case pg.LockTimeout < 0 || pg.LockTimeout > 10*time.Minute:
			errs = append(errs, fmt.Errorf("store.postgres.lock_timeout %s must be 0 (default 30s) to 10m", pg.LockTimeout))
		}
		if s.SpoolDir == "" {
			errs = append(errs, errors.New("store.spool_dir is required with driver postgres (a private directory for backups on their way to an operator)"))
		}
		if s.Path != "" {
			errs = append(errs, errors.New("store.path is the bbolt file; with driver postgres leave it out"))
		}
	default:
		errs = append(errs, fmt.Errorf("store.driver %q: want bbolt or postgres", s.Driver))
	}
	return errs
}

// DSN reads a PostgreSQL store's connection string.
func (p *Postgres) DSN() (string, error) {
	if p.DSNFile != "" {
		b, err := secfile.Read(p.DSNFile, "PostgreSQL DSN file")
		if err != nil {
			return "", fmt.Errorf("store.postgres.dsn_file: %w", err)
		}
		dsn := strings.TrimSpace(string(b))
		if dsn == "" {
			return "", fmt.Errorf("store.postgres.dsn_file %s is empty", p.DSNFile)
		}
		return dsn, nil
	}
	dsn := os.Getenv(p.DSNEnv)
	if dsn == "" {
		return "", fmt.Errorf("store.postgres.dsn_env: the environment variable %s is not set", p.DSNEnv)
	}
	return dsn, nil
}

// Open opens the store the configuration names.
func (s *Store) Open(opts store.Options) (*store.Store, error) {
	if s.Driver != DriverPostgres {
		return store.Open(s.Path, opts)
	}
	dsn, err := s.Postgres.DSN()
	if err != nil {
		return nil, err
	}
	return store.OpenPostgres(dsn, opts, engine.PostgresOptions{MaxConns: s.Postgres.MaxConns, LockTimeout: s.Postgres.LockTimeout})
}
