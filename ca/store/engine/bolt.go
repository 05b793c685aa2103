package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bolt is a bbolt file.
type Bolt struct {
	db   *bolt.DB
	path string
}

var _ DB = (*Bolt)(nil)

// OpenBolt opens or creates the bbolt file at path (mode 0600), waiting up
// to timeout for another process to release it before failing with
// ErrLocked. bbolt polls the lock every 50ms.
func OpenBolt(path string, timeout time.Duration) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w (waited up to %s)", path, ErrLocked, timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Bolt{db: db, path: path}, nil
}

func (b *Bolt) View(fn func(Tx) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (b *Bolt) Update(fn func(Tx) error) error {
	return b.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

// Lead: bbolt admits one process, which always leads.
func (b *Bolt) Lead(ctx context.Context, name string) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return soleLease{}, nil
}

// Watch: bbolt has one process, which knows its own writes.
func (b *Bolt) Watch(ctx context.Context, _ []byte, _ func()) { <-ctx.Done() }

// Size is the file's size.
func (b *Bolt) Size(context.Context) (int64, error) {
	fi, err := os.Stat(b.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (b *Bolt) Driver() string { return "bbolt" }
func (b *Bolt) Where() string  { return b.path }
func (b *Bolt) Close() error   { return b.db.Close() }

type soleLease struct{}

func (soleLease) Lost() <-chan struct{} { return nil }
func (soleLease) Release()              {}

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Bucket(name []byte) Bucket {
	if b := t.tx.Bucket(name); b != nil {
		return boltBucket{b}
	}
	return nil
}

func (t boltTx) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	return boltBucket{b}, nil
}

// Empty: a bbolt file is empty when it has no bucket at all; one with
// buckets of its own (another program's file) is not, even when they hold
// nothing.
func (t boltTx) Empty() (bool, error) {
	empty := true
	err := t.tx.ForEach(func([]byte, *bolt.Bucket) error {
		empty = false
		return nil
	})
	return empty, err
}

// Snapshot is bbolt's own consistent copy of the file.
func (t boltTx) Snapshot(w io.Writer) (int64, error) {
	n, err := t.tx.WriteTo(w)
	if err == nil && n != t.tx.Size() {
		err = fmt.Errorf("wrote %d bytes of %d", n, t.tx.Size())
	}
	return n, err
}

type boltBucket struct{ b *bolt.Bucket }

func (b boltBucket) Get(key []byte) []byte                    { return b.b.Get(key) }
func (b boltBucket) Put(key, value []byte) error              { return b.b.Put(key, value) }
func (b boltBucket) Delete(key []byte) error                  { return b.b.Delete(key) }
func (b boltBucket) ForEach(fn func(k, v []byte) error) error { return b.b.ForEach(fn) }
func (b boltBucket) Cursor() Cursor                           { return b.b.Cursor() }

// Len walks the keys: bbolt's page statistics miss a write transaction's
// own writes.
func (b boltBucket) Len() (int, error) {
	n := 0
	c := b.b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n, nil
}
