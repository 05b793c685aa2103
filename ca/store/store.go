package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"

	"github.com/shomei-pki/shomei/internal/secfile"
)

var (
	// ErrLocked means another process has the store file open. bbolt holds
	// an exclusive lock on the file for as long as it is open.
	ErrLocked = engine.ErrLocked

	// ErrSchemaVersion means the store was written by code with a different
	// schema version than this one.
	ErrSchemaVersion = engine.ErrSchemaVersion

	// ErrInvalidArgument means a caller's record is incomplete or has fields
	// set that only the store may set. The message names the field.
	ErrInvalidArgument = errors.New("invalid argument")
)

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero.
const DefaultTimeout = time.Second

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Timeout is how long Open waits for another process to release the
	// file before it fails with ErrLocked. Zero means DefaultTimeout. bbolt
	// polls the lock every 50ms, so Open may give up up to 50ms early.
	Timeout time.Duration
	// Now is the clock for the times the store fills in (audit record time,
	// issuer key created_at) when the caller left them unset. Nil means
	// time.Now.
	Now func() time.Time
}

// Store is an open store. Its methods are safe for concurrent use; the
// engine runs one write transaction at a time.
type Store struct {
	db   engine.DB
	path string // the bbolt file; empty for PostgreSQL
	now  func() time.Time

	// Group commit (batch.go).
	writes        chan writeCall
	writeMu       sync.RWMutex // held for reading to send on writes; for writing to close it
	writesClosed  bool
	committerDone chan struct{}
}

// Open opens the bbolt store at path, creating it — and its parent
// directory, mode 0700 — if it does not exist. A new store gets every
// bucket and the current schema version; an existing one must have that
// version. The file is created with mode 0600.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("store: open: %w: empty path", ErrInvalidArgument)
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("store: open %s: %w: Options.Timeout is negative (%s)", path, ErrInvalidArgument, opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	// The store holds every holder's records: a store file others may
	// read, or a directory others may write, is refused (issue 9 item 12).
	if err := secfile.CheckDir(path, "store"); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if err := secfile.Check(path, "store file"); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db, err := engine.OpenBolt(path, opts.Timeout)
	if err != nil {
		return nil, fmt.Errorf("store: open %w", err)
	}
	s, err := open(db, opts)
	if err != nil {
		return nil, err
	}
	s.path = path
	return s, nil
}

// OpenPostgres opens the store in the PostgreSQL database dsn names,
// applying the schema migrations it lacks (engine/migrations). Any number
// of processes may have it open at once; their writes run one at a time.
func OpenPostgres(dsn string, opts Options, pg engine.PostgresOptions) (*Store, error) {
	db, err := engine.OpenPostgres(dsn, pg)
	if err != nil {
		return nil, fmt.Errorf("store: open %w", err)
	}
	return open(db, opts)
}

// open lays out or checks the store in db and starts its committer.
func open(db engine.DB, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := db.Update(prepare); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", db.Where(), err)
	}
	s := &Store{db: db, now: opts.Now, writes: make(chan writeCall, maxGroup), committerDone: make(chan struct{})}
	go s.committer()
	return s, nil
}

// prepare lays out a new store, or checks that an existing one has this
// code's schema version and all its buckets.
func prepare(tx engine.Tx) error {
	meta := tx.Bucket(bucketMeta)
	var raw []byte
	if meta != nil {
		raw = meta.Get(metaSchemaVersion)
	}
	if raw == nil {
		empty, err := tx.Empty()
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("%w: found none, expected %d (it holds records but no schema version: not a shomei store?)",
				ErrSchemaVersion, schemaVersion)
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %q: %w", name, err)
			}
		}
		if err := tx.Bucket(bucketMeta).Put(metaShardsCounted, []byte{1}); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaSchemaVersion, encodeSchemaVersion(schemaVersion))
	}
	found, ok := decodeSchemaVersion(raw)
	if !ok {
		return fmt.Errorf("%w: found unreadable %x, expected %d", ErrSchemaVersion, raw, schemaVersion)
	}
	if found != schemaVersion {
		return fmt.Errorf("%w: found %d, expected %d", ErrSchemaVersion, found, schemaVersion)
	}
	for _, name := range addedBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %q: %w", name, err)
		}
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("store is damaged: bucket %q is missing", name)
		}
	}
	// A store from before CRL shards: count the certificates of every
	// partition once, so that none takes more than a shard holds.
	if tx.Bucket(bucketMeta).Get(metaShardsCounted) == nil {
		return countShards(tx)
	}
	return nil
}

// Close closes the store file and releases its lock.
func (s *Store) Close() error {
	s.stopWrites()
	return s.db.Close()
}

// Path is the bbolt store file's path, as given to Open; empty for
// PostgreSQL.
func (s *Store) Path() string {
	return s.path
}

// Driver is the store's engine: "bbolt" or "postgres".
func (s *Store) Driver() string { return s.db.Driver() }

// Where says where the store is, for messages: the bbolt file, or the
// PostgreSQL database and host (never a password).
func (s *Store) Where() string { return s.db.Where() }

// Shared says whether other processes may have the store open at once
// (PostgreSQL): then singleton work, such as publishing CRLs, is done
// only by the process that holds Lead's lease.
func (s *Store) Shared() bool { return s.db.Driver() != "bbolt" }

// Lead blocks until this process leads the singleton work named name (or
// ctx ends), and returns the lease. With bbolt, the only process leads at
// once.
func (s *Store) Lead(ctx context.Context, name string) (engine.Lease, error) {
	return s.db.Lead(ctx, name)
}

// WatchStatusChanges calls fn whenever another process sharing the store
// records a status change (issuance, revocation), until ctx ends, so that
// its OCSP answers and CRLs follow within R-R4's bounds without waiting
// for a poll. With bbolt there is no other process: it only waits.
func (s *Store) WatchStatusChanges(ctx context.Context, fn func()) {
	s.db.Watch(ctx, bucketChanges, fn)
}

// WatchIssuers calls fn whenever another process sharing the store changes
// the issuer key generations (rotation, activation, retirement,
// compromise), until ctx ends.
func (s *Store) WatchIssuers(ctx context.Context, fn func()) {
	s.db.Watch(ctx, bucketIssuers, fn)
}
