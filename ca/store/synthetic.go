package store

import (
	"encoding/binary"
	"fmt"

	"github.com/shomei-pki/shomei/ca/store/engine"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// loadBatch is how many entries one write transaction of
// LoadSyntheticRevocations carries.
const loadBatch = 20_000

// LoadSyntheticRevocations writes entries straight into partition p's CRL
// index (as revokeRecord would, serial, notAfter and revocation only), in
// transactions of loadBatch entries, records p if the store has no such
// partition, and marks it changed, at a status revision of its own (with
// no status change behind it), so that its CRL is published again.
//
// It is for benchmarks of CRL publishing at national scale (crl's
// BenchmarkShardSet: a million revoked certificates of one municipality),
// which no test could revoke one by one. The entries have no certificate
// records, status changes, shard counts or audit records behind them: use
// it only on a throwaway store, never on a CA's.
func (s *Store) LoadSyntheticRevocations(p *storev1.CRLPartition, entries []*storev1.Certificate) error {
	if p.GetName() == "" || p.GetUrl() == "" || len(p.GetDistributionPoint()) == 0 {
		return fmt.Errorf("store: load: %w: the partition needs a name, URL and distribution point", ErrInvalidArgument)
	}
	prefix := entryPrefix(p.Name)
	for start := 0; start < len(entries); start += loadBatch {
		batch := entries[start:min(start+loadBatch, len(entries))]
		err := s.db.Update(func(tx engine.Tx) error {
			b := tx.Bucket(bucketEntries)
			for i, e := range batch {
				if len(e.GetSerial()) == 0 || e.GetRevocation() == nil || e.GetNotAfter() == nil {
					return fmt.Errorf("%w: entries[%d] needs a serial, notAfter and a revocation", ErrInvalidArgument, start+i)
				}
				v, err := marshal(&storev1.Certificate{Serial: e.Serial, NotAfter: e.NotAfter, Revocation: e.Revocation})
				if err != nil {
					return err
				}
				if err := b.Put(append(prefix[:len(prefix):len(prefix)], e.Serial...), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: load: %w", err)
		}
	}
	err := s.db.Update(func(tx engine.Tx) error {
		parts := tx.Bucket(bucketParts)
		if parts.Get([]byte(p.Name)) == nil {
			v, err := marshal(p)
			if err != nil {
				return err
			}
			if err := parts.Put([]byte(p.Name), v); err != nil {
				return err
			}
		}
		// A revision of its own, as a revocation has, so that the CRL
		// published from it is up to date (PartitionEntries).
		rev := currentRevision(tx) + 1
		if err := touchPartition(tx, p.Name, rev); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaRevision, binary.BigEndian.AppendUint64(nil, rev))
	})
	if err != nil {
		return fmt.Errorf("store: load: %w", err)
	}
	return nil
}
