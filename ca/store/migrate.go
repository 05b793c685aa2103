package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/shomei-pki/shomei/ca/store/engine"
)

// ErrNotEmpty means a copy's destination already holds records.
var ErrNotEmpty = errors.New("the destination store is not empty")

// copyBatch is how many keys one write transaction of CopyTo carries.
const copyBatch = 5000

// CopyTo copies every record of s, as one read transaction sees it, into
// dst, a store of the same schema that holds nothing yet (typically a new
// PostgreSQL database, from a bbolt file: `shomeictl store migrate`). The
// records are copied byte for byte, so the audit chain and every index
// are the same. It writes in transactions of copyBatch keys and calls
// progress after each with the keys copied and the total. A copy that
// fails part way leaves dst partly written: drop it and copy again.
// Afterwards it compares the two stores' counts and audit heads, and
// verifies dst's audit chain.
func (s *Store) CopyTo(dst *Store, progress func(done, total int)) (Counts, error) {
	if done, err := dst.Initialized(); err != nil {
		return Counts{}, err
	} else if done {
		return Counts{}, fmt.Errorf("store: copy to %s: %w: it has its issuers already", dst.Where(), ErrNotEmpty)
	}
	if n, err := dst.Count(); err != nil {
		return Counts{}, err
	} else if n != (Counts{}) {
		return Counts{}, fmt.Errorf("store: copy to %s: %w (%+v)", dst.Where(), ErrNotEmpty, n)
	}
	err := s.db.View(func(src engine.Tx) error {
		total := 0
		for _, name := range allBuckets {
			n, err := src.Bucket(name).Len()
			if err != nil {
				return err
			}
			total += n
		}
		done := 0
		for _, name := range allBuckets {
			var keys, values [][]byte
			flush := func() error {
				if len(keys) == 0 {
					return nil
				}
				err := dst.db.Update(func(tx engine.Tx) error {
					b := tx.Bucket(name)
					for i := range keys {
						if err := b.Put(keys[i], values[i]); err != nil {
							return err
						}
					}
					return nil
				})
				done += len(keys)
				keys, values = keys[:0], values[:0]
				if err == nil && progress != nil {
					progress(done, total)
				}
				return err
			}
			err := src.Bucket(name).ForEach(func(k, v []byte) error {
				keys, values = append(keys, bytes.Clone(k)), append(values, bytes.Clone(v))
				if len(keys) == copyBatch {
					return flush()
				}
				return nil
			})
			if err == nil {
				err = flush()
			}
			if err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return Counts{}, fmt.Errorf("store: copy to %s: %w", dst.Where(), err)
	}
	return s.compare(dst)
}

// compare checks that dst holds what s does: as many keys in every
// bucket, the same audit head, and an audit chain that verifies.
func (s *Store) compare(dst *Store) (Counts, error) {
	for _, name := range allBuckets {
		want, err := s.bucketLen(name)
		if err != nil {
			return Counts{}, err
		}
		got, err := dst.bucketLen(name)
		if err != nil {
			return Counts{}, err
		}
		if got != want {
			return Counts{}, fmt.Errorf("store: copy to %s: bucket %s holds %d keys, the source %d", dst.Where(), name, got, want)
		}
	}
	want, err := s.Count()
	if err != nil {
		return Counts{}, err
	}
	got, err := dst.Count()
	if err != nil {
		return Counts{}, err
	}
	wantSeq, wantHash, err := s.AuditHead()
	if err != nil {
		return got, err
	}
	gotSeq, gotHash, err := dst.AuditHead()
	if err != nil {
		return got, err
	}
	if gotSeq != wantSeq || gotHash != wantHash {
		return got, fmt.Errorf("store: copy to %s: its audit head is record %d %x, the source's %d %x", dst.Where(), gotSeq, gotHash, wantSeq, wantHash)
	}
	if n, err := dst.VerifyAudit(); err != nil {
		return got, fmt.Errorf("store: copy to %s: %w", dst.Where(), err)
	} else if n != want.AuditRecords {
		return got, fmt.Errorf("store: copy to %s: %d audit records verify, %d are stored", dst.Where(), n, want.AuditRecords)
	}
	return got, nil
}

func (s *Store) bucketLen(name []byte) (n int, err error) {
	err = s.db.View(func(tx engine.Tx) error {
		n, err = tx.Bucket(name).Len()
		return err
	})
	return n, err
}
