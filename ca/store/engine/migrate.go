package engine

import (
	"embed"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrations are the PostgreSQL schema's versions, applied in order of
// their number (NNNN_what.sql), each once, each in its own transaction
// with its row in shomei_migrations. A migration is never edited after it
// ships; a change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	files, err := migrations.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, f := range files {
		num, _, ok := strings.Cut(f.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: the name is not NNNN_what.sql", f.Name())
		}
		body, err := migrations.ReadFile(path.Join("migrations", f.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: f.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the newest PostgreSQL migration this code has.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate applies the migrations the database lacks, holding migrateLock
// so that processes starting together apply each once. A database with a
// migration this code does not know is refused: it was written by newer
// code.
func (p *Postgres) migrate() error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	tx, err := p.pool.Begin(p.ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(p.ctx) //nolint:errcheck // after Commit it does nothing
	if _, err := tx.Exec(p.ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return err
	}
	if _, err := tx.Exec(p.ctx, `CREATE TABLE IF NOT EXISTS shomei_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	rows, err := tx.Query(p.ctx, `SELECT version FROM shomei_migrations ORDER BY version`)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if n := len(applied); n > 0 && int(applied[n-1]) > len(ms) {
		return fmt.Errorf("%w: the database has schema version %d, this code knows up to %d: it was written by a newer Shomei", ErrSchemaVersion, applied[n-1], len(ms))
	}
	for i, v := range applied {
		if int(v) != i+1 {
			return fmt.Errorf("%w: the database's migrations skip version %d: not a Shomei store, or damaged", ErrSchemaVersion, i+1)
		}
	}
	for _, m := range ms[len(applied):] {
		if _, err := tx.Exec(p.ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(p.ctx, `INSERT INTO shomei_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return tx.Commit(p.ctx)
}
