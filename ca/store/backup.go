package store

import (
	"crypto/sha256"
	"fmt"
	"io"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"
)

// SnapshotInfo describes a snapshot of the store (Snapshot).
type SnapshotInfo struct {
	// TakenAt is when its read transaction began.
	TakenAt time.Time
	// Size is how many bytes it is: the bbolt file as that transaction
	// sees it.
	Size int64
	// AuditHeadSeq and AuditHeadHash are the audit log's last record in
	// it and the SHA-256 of its stored bytes (zero for an empty log).
	AuditHeadSeq  uint64
	AuditHeadHash [sha256.Size]byte
}

// Snapshot writes a consistent copy of the whole store file to w, as one
// read transaction sees it (bbolt Tx.WriteTo): writers go on meanwhile and
// their commits are not in it. It is the store's hot backup. A read
// transaction keeps bbolt from remapping the file, which a writer growing
// it waits for: w should be fast (a local file), not a network peer.
//
// The audit head is read in the same transaction and checked against the
// log's last record, so a snapshot of a store whose log's head is broken
// is refused.
func (s *Store) Snapshot(w io.Writer) (SnapshotInfo, error) {
	info := SnapshotInfo{TakenAt: s.now()}
	err := s.db.View(func(tx engine.Tx) error {
		head, err := currentHead(tx)
		if err != nil {
			return err
		}
		info.AuditHeadSeq, info.AuditHeadHash = head.seq, head.hash
		info.Size, err = tx.Snapshot(w)
		return err
	})
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("store: snapshot: %w", err)
	}
	return info, nil
}

// Counts is how many records of each kind the store holds.
type Counts struct {
	Certificates, Issuers, AuditRecords, Responders int
}

// Count counts the store's records, from bbolt's bucket statistics (no
// record is decoded).
func (s *Store) Count() (Counts, error) {
	var c Counts
	err := s.db.View(func(tx engine.Tx) error {
		for _, n := range []struct {
			to     *int
			bucket []byte
		}{{&c.Certificates, bucketCerts}, {&c.Issuers, bucketIssuers}, {&c.AuditRecords, bucketAudit}, {&c.Responders, bucketResponders}} {
			var err error
			if *n.to, err = tx.Bucket(n.bucket).Len(); err != nil {
				return err
			}
		}
		return nil
	})
	return c, err
}
