package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/shomei-pki/shomei/ocsp"
)

// boltSource is the benchmark's ocsp.Source: statuses read from a bbolt
// file (written by dataset.writeBolt), one read transaction per status, so
// that every response Shomei signs pays for a real storage lookup as it
// does on the CA store. Serials it does not hold are unknown.
type boltSource struct {
	db *bolt.DB
}

var _ ocsp.Source = (*boltSource)(nil)

// openBoltSource opens the file read-only.
func openBoltSource(path string) (*boltSource, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &boltSource{db: db}, nil
}

func (s *boltSource) Close() error { return s.db.Close() }

// Status implements ocsp.Source. ThisUpdate is left zero: the file is the
// live store, so the responder uses now.
func (s *boltSource) Status(ctx context.Context, _ *ocsp.Issuer, serial *big.Int) (ocsp.Status, error) {
	if err := ctx.Err(); err != nil {
		return ocsp.Status{}, err
	}
	if serial.Sign() <= 0 {
		return ocsp.Status{Status: ocsp.Unknown}, nil
	}
	var st ocsp.Status
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(statusBucket)
		var v []byte
		if b != nil {
			v = b.Get(serial.Bytes())
		}
		var err error
		st, err = decodeStatus(v)
		return err
	})
	return st, err
}

var errStoredStatus = errors.New("stored status is corrupt")

// decodeStatus reads a value encodeStatus wrote; nil is unknown.
func decodeStatus(v []byte) (ocsp.Status, error) {
	switch {
	case v == nil:
		return ocsp.Status{Status: ocsp.Unknown}, nil
	case len(v) == 1 && v[0] == storedGood:
		return ocsp.Status{Status: ocsp.Good}, nil
	case len(v) == 10 && v[0] == storedRevoked:
		return ocsp.Status{
			Status:    ocsp.Revoked,
			RevokedAt: time.Unix(int64(binary.BigEndian.Uint64(v[1:9])), 0).UTC(),
			Reason:    int(v[9]),
		}, nil
	}
	return ocsp.Status{}, fmt.Errorf("%w: %x", errStoredStatus, v)
}
