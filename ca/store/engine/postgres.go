package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresOptions tune OpenPostgres. The zero value is ready to use.
type PostgresOptions struct {
	// MaxConns bounds the connection pool; zero means 8.
	MaxConns int32
	// LockTimeout bounds how long a write transaction waits for the
	// writers of other processes; zero means 30 s.
	LockTimeout time.Duration
}

// Postgres is a PostgreSQL database holding the store.
type Postgres struct {
	pool    *pgxpool.Pool
	where   string
	buckets map[string]string // bucket name → table
	ctx     context.Context
	cancel  context.CancelFunc
}

var _ DB = (*Postgres)(nil)

// writeLock is the advisory lock every write transaction takes first; the
// migrations take migrateLock. Both live in the key space of
// pg_advisory_xact_lock(bigint); leases (Lead) hash their names into it.
const (
	writeLock   int64 = 0x73686f6d65690001 // "shomei" ‖ 1
	migrateLock int64 = 0x73686f6d65690002
)

// bucketName admits the names package store gives its buckets, so that a
// table name built from one is always a plain identifier.
var bucketName = regexp.MustCompile(`^[a-z][a-z_]{0,40}$`)

// OpenPostgres connects to the database dsn names (a libpq connection
// string or URL), applies the migrations it lacks, and finds its buckets.
func OpenPostgres(dsn string, opts PostgresOptions) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may repeat the DSN, password included.
		return nil, errors.New("postgres: the DSN does not parse (see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING)")
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 8
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 30 * time.Second
	}
	cfg.ConnConfig.RuntimeParams["lock_timeout"] = fmt.Sprint(opts.LockTimeout.Milliseconds())
	cfg.ConnConfig.RuntimeParams["application_name"] = "shomei"
	where := fmt.Sprintf("postgres database %q on %s", cfg.ConnConfig.Database, cfg.ConnConfig.Host)

	ctx, cancel := context.WithCancel(context.Background())
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	p := &Postgres{pool: pool, where: where, ctx: ctx, cancel: cancel}
	pingCtx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := pool.Ping(pingCtx); err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := p.migrate(); err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := p.findBuckets(); err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return p, nil
}

func (p *Postgres) findBuckets() error {
	rows, err := p.pool.Query(p.ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'kv\_%'`)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	p.buckets = make(map[string]string, len(tables))
	for _, t := range tables {
		p.buckets[t[len("kv_"):]] = t
	}
	return nil
}

// Size sums pg_total_relation_size over the tables of the store's schema
// (the buckets' kv_ tables and the migrations'), not the whole database,
// which other schemas may share.
func (p *Postgres) Size(ctx context.Context) (int64, error) {
	var n int64
	err := p.pool.QueryRow(ctx, `SELECT COALESCE(sum(pg_total_relation_size(format('%I.%I', schemaname, tablename)::regclass)), 0)::bigint
		FROM pg_tables WHERE schemaname = current_schema()`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("%s: size: %w", p.where, err)
	}
	return n, nil
}

func (p *Postgres) Driver() string { return "postgres" }
func (p *Postgres) Where() string  { return p.where }

func (p *Postgres) Close() error {
	p.cancel()
	p.pool.Close()
	return nil
}

// View runs fn in a REPEATABLE READ, READ ONLY transaction.
func (p *Postgres) View(fn func(Tx) error) error {
	tx, err := p.pool.BeginTx(p.ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("%s: begin: %w", p.where, err)
	}
	// Deferred, so that a function that panics (and a caller that
	// recovers, as net/http does) gives the connection back.
	defer tx.Rollback(p.ctx) //nolint:errcheck // a read transaction has nothing to keep
	t := &pgTx{db: p, tx: tx}
	if err := fn(t); err != nil {
		return err
	}
	return t.err
}

// Update takes the write lock, runs fn, sends its writes and commits.
func (p *Postgres) Update(fn func(Tx) error) error {
	tx, err := p.pool.BeginTx(p.ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("%s: begin: %w", p.where, err)
	}
	defer tx.Rollback(p.ctx) //nolint:errcheck // after Commit it does nothing
	if _, err := tx.Exec(p.ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
		return fmt.Errorf("%s: wait for the other writers: %w", p.where, err)
	}
	t := &pgTx{db: p, tx: tx, writable: true, pending: map[string]map[string]pendingWrite{}, notify: map[string]bool{}}
	if err := fn(t); err != nil {
		return err
	}
	if t.err != nil {
		return t.err
	}
	// Watchers (Watch) of the buckets written (flush notes them) hear of
	// it at commit.
	if err := t.flush(""); err != nil {
		return err
	}
	if len(t.notify) > 0 {
		batch := &pgx.Batch{}
		for table := range t.notify {
			batch.Queue(`SELECT pg_notify($1, '')`, channel(table))
		}
		if err := tx.SendBatch(p.ctx, batch).Close(); err != nil {
			return fmt.Errorf("%s: notify: %w", p.where, err)
		}
	}
	if err := tx.Commit(p.ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", p.where, err)
	}
	return nil
}

// Lead waits for the session advisory lock named name, held on a
// connection taken out of the pool for as long as the lease lasts.
func (p *Postgres) Lead(ctx context.Context, name string) (Lease, error) {
	key := leaseKey(name)
	for {
		conn, err := p.pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		var got bool
		err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got)
		if err == nil && got {
			l := &pgLease{conn: conn.Hijack(), key: key, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
			go l.watch()
			return l, nil
		}
		conn.Release()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(leasePoll):
		}
	}
}

// leasePoll is how often a process that does not lead tries again, and
// how often a leader checks its connection.
const leasePoll = 500 * time.Millisecond

func leaseKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("shomei lease " + name))
	return int64(h.Sum64())
}

type pgLease struct {
	conn       *pgx.Conn
	key        int64
	lost       chan struct{}
	stop, done chan struct{}
}

func (l *pgLease) Lost() <-chan struct{} { return l.lost }

// watch checks the connection that holds the lock; when it fails, the
// server has dropped (or will drop) the lock, so leadership is lost.
func (l *pgLease) watch() {
	defer close(l.done)
	t := time.NewTicker(leasePoll)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.key)
			_ = l.conn.Close(ctx)
			cancel()
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := l.conn.Ping(ctx)
			cancel()
			if err != nil {
				close(l.lost)
				_ = l.conn.Close(context.Background())
				<-l.stop
				return
			}
		}
	}
}

func (l *pgLease) Release() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// channel is the LISTEN/NOTIFY channel of a table's commits.
func channel(table string) string { return "shomei_" + table }

// Watch listens on a connection of its own for commits to bucket.
func (p *Postgres) Watch(ctx context.Context, bucket []byte, fn func()) {
	table, ok := p.buckets[string(bucket)]
	if !ok {
		<-ctx.Done()
		return
	}
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		conn, err := p.pool.Acquire(ctx)
		if err != nil {
			continue
		}
		c := conn.Hijack()
		if _, err := c.Exec(ctx, `LISTEN `+channel(table)); err != nil {
			_ = c.Close(context.Background())
			continue
		}
		if !first {
			fn() // what was written while the connection was down
		}
		for {
			if _, err := c.WaitForNotification(ctx); err != nil {
				break
			}
			fn()
		}
		_ = c.Close(context.Background())
	}
}

type pendingWrite struct {
	value  []byte
	delete bool
}

type pgTx struct {
	db       *Postgres
	tx       pgx.Tx
	writable bool
	err      error                              // the first failed read (sticky)
	pending  map[string]map[string]pendingWrite // table → key → write
	notify   map[string]bool                    // tables written (flush notes each)
}

func (t *pgTx) fail(err error) {
	if t.err == nil {
		t.err = fmt.Errorf("%s: %w", t.db.where, err)
	}
}

func (t *pgTx) Bucket(name []byte) Bucket {
	table, ok := t.db.buckets[string(name)]
	if !ok {
		return nil
	}
	return &pgBucket{t: t, table: table}
}

func (t *pgTx) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	if b := t.Bucket(name); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("bucket %q has no table kv_%s: a migration is missing", name, name)
}

func (t *pgTx) Empty() (bool, error) {
	if err := t.flush(""); err != nil {
		return false, err
	}
	for _, table := range t.db.buckets {
		var any bool
		if err := t.tx.QueryRow(t.db.ctx, `SELECT EXISTS (SELECT 1 FROM `+table+`)`).Scan(&any); err != nil {
			return false, err
		}
		if any {
			return false, nil
		}
	}
	return true, nil
}

// Snapshot copies every bucket, as this transaction sees it, into a new
// bbolt file, and writes that file to w.
func (t *pgTx) Snapshot(w io.Writer) (int64, error) {
	f, err := os.CreateTemp("", "shomei-snapshot-*.db")
	if err != nil {
		return 0, err
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path)
	dst, err := OpenBolt(path, time.Second)
	if err != nil {
		return 0, err
	}
	err = dst.Update(func(out Tx) error {
		for name := range t.db.buckets {
			if err := CopyBucket(out, t, []byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = t.err
	}
	if err != nil {
		return 0, err
	}
	f, err = os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(w, f)
}

// flush sends the transaction's pending writes to table (every table when
// empty) in one round trip.
func (t *pgTx) flush(table string) error {
	if !t.writable {
		return nil
	}
	batch := &pgx.Batch{}
	for tb, writes := range t.pending {
		if table != "" && tb != table {
			continue
		}
		var putK, putV, delK [][]byte
		for k, w := range writes {
			if w.delete {
				delK = append(delK, []byte(k))
			} else {
				putK, putV = append(putK, []byte(k)), append(putV, w.value)
			}
		}
		if len(delK) > 0 {
			batch.Queue(`DELETE FROM `+tb+` WHERE k = ANY($1)`, delK)
		}
		if len(putK) > 0 {
			batch.Queue(`INSERT INTO `+tb+` (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`, putK, putV)
		}
		delete(t.pending, tb)
		t.notify[tb] = true
	}
	if batch.Len() == 0 {
		return nil
	}
	if err := t.tx.SendBatch(t.db.ctx, batch).Close(); err != nil {
		t.fail(fmt.Errorf("write: %w", err))
		return t.err
	}
	return nil
}

type pgBucket struct {
	t     *pgTx
	table string
}

func (b *pgBucket) Get(key []byte) []byte {
	if w, ok := b.t.pending[b.table][string(key)]; ok {
		if w.delete {
			return nil
		}
		return w.value
	}
	var v []byte
	err := b.t.tx.QueryRow(b.t.db.ctx, `SELECT v FROM `+b.table+` WHERE k = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		b.t.fail(fmt.Errorf("read %s: %w", b.table, err))
		return nil
	}
	return v
}

func (b *pgBucket) write(key []byte, w pendingWrite) error {
	if !b.t.writable {
		return errors.New("write in a read transaction")
	}
	if len(key) == 0 {
		return errors.New("empty key")
	}
	m := b.t.pending[b.table]
	if m == nil {
		m = map[string]pendingWrite{}
		b.t.pending[b.table] = m
	}
	m[string(key)] = w
	return nil
}

func (b *pgBucket) Put(key, value []byte) error {
	return b.write(key, pendingWrite{value: append([]byte{}, value...)})
}

func (b *pgBucket) Delete(key []byte) error {
	return b.write(key, pendingWrite{delete: true})
}

func (b *pgBucket) ForEach(fn func(k, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return b.t.err
}

func (b *pgBucket) Len() (int, error) {
	if err := b.t.flush(b.table); err != nil {
		return 0, err
	}
	var n int
	err := b.t.tx.QueryRow(b.t.db.ctx, `SELECT count(*) FROM `+b.table).Scan(&n)
	return n, err
}

func (b *pgBucket) Cursor() Cursor {
	return &pgCursor{b: b}
}
