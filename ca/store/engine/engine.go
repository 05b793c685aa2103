package engine

import (
	"context"
	"errors"
	"io"
)

// DB is an open engine.
type DB interface {
	// View runs fn in a read transaction: one consistent snapshot.
	View(fn func(Tx) error) error
	// Update runs fn in a write transaction. Write transactions run one at
	// a time; the transaction commits if fn returns nil and no read in it
	// failed, and is rolled back otherwise.
	Update(fn func(Tx) error) error
	// Lead blocks until this process leads the singleton work named by
	// name or ctx ends. The lease's Lost channel closes if leadership is
	// lost (the connection that holds it failed); Release gives it up.
	Lead(ctx context.Context, name string) (Lease, error)
	// Watch calls fn whenever another process commits a write to bucket,
	// until ctx ends (and once more after a lost connection comes back,
	// since a write may have been missed meanwhile). With bbolt there is
	// no other process and it only waits for ctx.
	Watch(ctx context.Context, bucket []byte, fn func())
	// Size is how many bytes the store takes: the bbolt file's size, or
	// with PostgreSQL the total size (indexes and TOAST included) of the
	// tables of the store's schema. It is a query with PostgreSQL: callers
	// that export it refresh it now and then, not on every scrape.
	Size(ctx context.Context) (int64, error)
	// Driver is "bbolt" or "postgres".
	Driver() string
	// Where says where the data is, for messages: a file path, or the
	// PostgreSQL database (never a password).
	Where() string
	Close() error
}

// Tx is a transaction.
type Tx interface {
	// Bucket is the named bucket, or nil when it does not exist.
	Bucket(name []byte) Bucket
	// CreateBucketIfNotExists makes the bucket in a write transaction.
	// PostgreSQL makes its buckets only by migration: there it is an error
	// for a bucket the migrations do not make.
	CreateBucketIfNotExists(name []byte) (Bucket, error)
	// Empty says whether the engine holds nothing: with bbolt no bucket at
	// all, with PostgreSQL no row in any bucket's table (the migrations
	// make the tables).
	Empty() (bool, error)
	// Snapshot writes the transaction's view of every bucket to w as a
	// bbolt file, the store's one backup format, and returns its size.
	Snapshot(w io.Writer) (int64, error)
}

// Bucket is one bucket in a transaction. Keys and values returned are
// valid only until the transaction ends.
type Bucket interface {
	// Get is the value under key, or nil.
	Get(key []byte) []byte
	Put(key, value []byte) error
	Delete(key []byte) error
	// ForEach calls fn for every key in order, stopping at the first error.
	ForEach(fn func(k, v []byte) error) error
	Cursor() Cursor
	// Len counts the bucket's keys.
	Len() (int, error)
}

// Cursor walks a bucket in key order. Each method returns the key and
// value it lands on, or nil keys past either end.
type Cursor interface {
	First() ([]byte, []byte)
	Last() ([]byte, []byte)
	Seek(key []byte) ([]byte, []byte)
	Next() ([]byte, []byte)
	Prev() ([]byte, []byte)
}

// Lease is leadership of a singleton job (DB.Lead).
type Lease interface {
	// Lost closes when leadership is lost without Release.
	Lost() <-chan struct{}
	Release()
}

// ErrSchemaVersion means the data was written by code of another schema
// version (a PostgreSQL database migrated by newer code).
var ErrSchemaVersion = errors.New("incompatible store schema version")

// ErrLocked means another process holds a bbolt file.
var ErrLocked = errors.New("store file is in use by another process")
