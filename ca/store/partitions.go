package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// ErrCRLNumber means a CRL would not have a higher number than the last one
// of its partition (R-R5: monotonic).
var ErrCRLNumber = errors.New("CRL number is not higher than the last one")

// touchPartition records that a status change at revision rev touched the
// partition, so its CRL must be published again.
func touchPartition(tx engine.Tx, name string, rev uint64) error {
	b := tx.Bucket(bucketParts)
	v := b.Get([]byte(name))
	if v == nil {
		return nil // recorded when its first certificate completes
	}
	p := new(storev1.CRLPartition)
	if err := proto.Unmarshal(v, p); err != nil {
		return fmt.Errorf("store is damaged: partition %s: %w", name, err)
	}
	p.ChangedRevision = rev
	nv, err := marshal(p)
	if err != nil {
		return err
	}
	return b.Put([]byte(name), nv)
}

// Partitions returns every CRL partition with its last published CRL.
func (s *Store) Partitions() ([]*storev1.CRLPartition, error) {
	var out []*storev1.CRLPartition
	err := s.db.View(func(tx engine.Tx) error {
		return tx.Bucket(bucketParts).ForEach(func(k, v []byte) error {
			p := new(storev1.CRLPartition)
			if err := proto.Unmarshal(v, p); err != nil {
				return fmt.Errorf("store is damaged: partition %s: %w", k, err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

// Partition returns one partition; ErrNotFound if none.
func (s *Store) Partition(name string) (*storev1.CRLPartition, error) {
	var p *storev1.CRLPartition
	err := s.db.View(func(tx engine.Tx) error {
		v := tx.Bucket(bucketParts).Get([]byte(name))
		if v == nil {
			return fmt.Errorf("partition %s: %w", name, ErrNotFound)
		}
		p = new(storev1.CRLPartition)
		return proto.Unmarshal(v, p)
	})
	return p, err
}

// PartitionEntries calls fn for each revoked certificate of a partition
// that has not expired at now (R-R5: entries are dropped after the
// certificate's expiry, validity.Expired), in serial order, and returns
// the status-change revision the entries reflect. The records fn gets
// carry only the serial, notAfter and the revocation: the index keeps
// those, so that a million-entry CRL does not read a million
// certificates. The CRL publisher reads the same entries in place
// (PartitionRevocations).
func (s *Store) PartitionEntries(name string, now time.Time, fn func(*storev1.Certificate) error) (uint64, error) {
	var rev uint64
	err := s.db.View(func(tx engine.Tx) error {
		rev = currentRevision(tx)
		return walkEntries(tx, name, now, func(v []byte, e crlEntry, rec *storev1.Certificate) error {
			if rec == nil {
				rec = new(storev1.Certificate)
				if err := proto.Unmarshal(v, rec); err != nil {
					return fmt.Errorf("store is damaged: CRL entry %x: %w", e.serial, err)
				}
			}
			return fn(rec)
		})
	})
	return rev, err
}

// CRL returns a partition's last published CRL, DER; nil if none yet.
func (s *Store) CRL(name string) ([]byte, error) {
	var der []byte
	err := s.db.View(func(tx engine.Tx) error {
		der = bytes.Clone(tx.Bucket(bucketCRLs).Get([]byte(name)))
		return nil
	})
	return der, err
}

// SaveCRL records a partition's newly published CRL. Its number must be
// higher than the last one (R-R5).
func (s *Store) SaveCRL(name string, number uint64, thisUpdate, nextUpdate time.Time, revision uint64, der []byte) error {
	err := s.write(func(tx engine.Tx) error {
		b := tx.Bucket(bucketParts)
		v := b.Get([]byte(name))
		if v == nil {
			return fmt.Errorf("partition %s: %w", name, ErrNotFound)
		}
		p := new(storev1.CRLPartition)
		if err := proto.Unmarshal(v, p); err != nil {
			return err
		}
		if number <= p.Number {
			return fmt.Errorf("%w: partition %s: %d after %d", ErrCRLNumber, name, number, p.Number)
		}
		p.Number, p.Revision = number, revision
		p.ThisUpdate, p.NextUpdate = timestamppb.New(thisUpdate), timestamppb.New(nextUpdate)
		nv, err := marshal(p)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(name), nv); err != nil {
			return err
		}
		return tx.Bucket(bucketCRLs).Put([]byte(name), der)
	})
	if err != nil {
		return fmt.Errorf("store: save CRL: %w", err)
	}
	return nil
}
