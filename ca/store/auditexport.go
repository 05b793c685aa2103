package store

import (
	"fmt"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// AuditRecordsFrom calls fn with up to limit audit records from seq from
// on, in order, in one short read transaction, and returns the seq to ask
// for next (past the last one read; from itself when there were none).
// Paging keeps a long export from holding a read transaction open while
// it sends. fn must not call the store's writing methods.
func (s *Store) AuditRecordsFrom(from uint64, limit int, fn func(*storev1.AuditRecord) error) (uint64, error) {
	next := max(from, 1)
	err := s.db.View(func(tx engine.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Seek(auditKey(next)); k != nil && limit > 0; k, v = c.Next() {
			seq, ok := decodeAuditKey(k)
			if !ok {
				return tampered(next, "malformed audit key %x", k)
			}
			rec := new(storev1.AuditRecord)
			if err := proto.Unmarshal(v, rec); err != nil {
				return tampered(seq, "record does not decode: %v", err)
			}
			if err := fn(rec); err != nil {
				return err
			}
			next, limit = seq+1, limit-1
		}
		return nil
	})
	if err != nil {
		return from, fmt.Errorf("store: audit records: %w", err)
	}
	return next, nil
}
