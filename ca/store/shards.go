package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/shomei-pki/shomei/ca/store/engine"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// CRL shards (R-R5). A certificate's CRL partition is fixed at issuance:
// its name is in the TBSCertificate the store records before the HSM
// signs. Since any certificate may be revoked, a partition's CRL can list
// as many entries as the partition has certificates; to bound every CRL,
// a partition is a shard of its (profile, issuer generation, municipality)
// and holds at most a configured number of certificates.
//
// The store counts, per partition, the certificate records that name it
// (crl_partition): pending, issued and abandoned alike, so the count never
// goes down, and a shard once full stays full. Reserve refuses a
// certificate whose partition already holds Reservation.CRLShardSize of
// them, with a *CRLShardFullError, in the same transaction that would
// record it: the check and the count are exact however many requests and
// CA processes reserve at once, since write transactions run one at a time
// across every process that shares the store (engine). The caller, which
// chose the partition and wrote its name into the TBS, plans the
// certificate again in the next shard (OpenCRLShard).
//
// The names of the shards are the caller's (ca/shard.go); the store counts
// by name and never parses one.

// DefaultCRLShardSize is the most certificates a CRL partition holds when
// the caller sets no size: the 100,000 (a CRL of about 7 MB).
const DefaultCRLShardSize = 100_000

// MaxCRLShardSize is the largest size a caller may set: a partition of a
// million revoked certificates makes a CRL of about 73 MB, the largest the
// crl package is measured at (crl/doc.go).
const MaxCRLShardSize = 1_000_000

// ErrCRLShardFull means a certificate's CRL partition already holds as
// many certificates as a shard may. Errors wrapping it are
// *CRLShardFullError.
var ErrCRLShardFull = errors.New("CRL shard is full")

// CRLShardFullError names the full partition of a refused reservation.
type CRLShardFullError struct {
	// Partition is the partition's name.
	Partition string
	// Certificates is how many certificate records name it; Size the
	// bound the reservation was refused under.
	Certificates, Size int
}

func (e *CRLShardFullError) Error() string {
	return fmt.Sprintf("%v: partition %s holds %d certificates, a shard at most %d", ErrCRLShardFull, e.Partition, e.Certificates, e.Size)
}

// Unwrap makes errors.Is(err, ErrCRLShardFull) hold.
func (e *CRLShardFullError) Unwrap() error { return ErrCRLShardFull }

// CRLShardSize is size checked: DefaultCRLShardSize for zero, an error
// wrapping ErrInvalidArgument when it is negative or above
// MaxCRLShardSize.
func CRLShardSize(size int) (int, error) {
	switch {
	case size == 0:
		return DefaultCRLShardSize, nil
	case size < 0 || size > MaxCRLShardSize:
		return 0, fmt.Errorf("%w: CRL shard size %d: must be 1 to %d certificates", ErrInvalidArgument, size, MaxCRLShardSize)
	}
	return size, nil
}

// shardCount is how many certificate records name partition.
func shardCount(meta engine.Bucket, partition string) (int, error) {
	v := meta.Get(shardCountKey(partition))
	switch {
	case v == nil:
		return 0, nil
	case len(v) != 8 || binary.BigEndian.Uint64(v) > math.MaxInt32:
		return 0, fmt.Errorf("store is damaged: CRL shard count of %s is %x", partition, v)
	}
	return int(binary.BigEndian.Uint64(v)), nil
}

func putShardCount(meta engine.Bucket, partition string, n int) error {
	return meta.Put(shardCountKey(partition), binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// checkShards refuses r when a certificate's partition is full; it writes
// nothing. A certificate without a partition counts in none.
func checkShards(tx engine.Tx, r Reservation, size int) error {
	meta := tx.Bucket(bucketMeta)
	for _, cert := range r.Certs {
		if cert.CrlPartition == "" {
			continue
		}
		n, err := shardCount(meta, cert.CrlPartition)
		if err != nil {
			return err
		}
		if n >= size {
			return &CRLShardFullError{Partition: cert.CrlPartition, Certificates: n, Size: size}
		}
	}
	return nil
}

// countInShard counts one more certificate record in partition.
func countInShard(tx engine.Tx, partition string) error {
	if partition == "" {
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	n, err := shardCount(meta, partition)
	if err != nil {
		return err
	}
	return putShardCount(meta, partition, n+1)
}

// CRLShardCount is how many certificate records name partition: at most
// the shard size the partition was filled under.
func (s *Store) CRLShardCount(partition string) (int, error) {
	var n int
	err := s.db.View(func(tx engine.Tx) error {
		var err error
		n, err = shardCount(tx.Bucket(bucketMeta), partition)
		return err
	})
	return n, err
}

// OpenCRLShard returns the first shard, from shard from on, whose
// partition (named by name) holds fewer than size certificates: where
// the caller plans its next certificate. Reserve decides: another
// process may fill the shard meanwhile.
func (s *Store) OpenCRLShard(name func(shard uint32) string, from uint32, size int) (uint32, error) {
	size, err := CRLShardSize(size)
	if err != nil {
		return 0, fmt.Errorf("store: open CRL shard: %w", err)
	}
	shard := from
	err = s.db.View(func(tx engine.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for ; ; shard++ {
			n, err := shardCount(meta, name(shard))
			if err != nil {
				return err
			}
			if n < size {
				return nil
			}
			if shard == math.MaxUint32 {
				return fmt.Errorf("%w: every shard is full", ErrCRLShardFull)
			}
		}
	})
	if err != nil {
		return 0, fmt.Errorf("store: open CRL shard: %w", err)
	}
	return shard, nil
}

// countShards counts every certificate record in its partition, in a store
// from before the counts were kept (prepare), and marks the counts kept.
func countShards(tx engine.Tx) error {
	counts := map[string]int{}
	err := tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
		var rec storev1.Certificate
		if err := proto.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("store is damaged: certificate %x: %w", k, err)
		}
		if rec.CrlPartition != "" {
			counts[rec.CrlPartition]++
		}
		return nil
	})
	if err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	for partition, n := range counts {
		if err := putShardCount(meta, partition, n); err != nil {
			return err
		}
	}
	return meta.Put(metaShardsCounted, []byte{1})
}

// shardTally is, per partition, how many certificate records name it and
// the last one seen (ReconcileAudit).
type shardTally map[string]*tallied

type tallied struct {
	n    int
	last []byte
}

func (t shardTally) add(rec *storev1.Certificate) {
	if rec.CrlPartition == "" {
		return
	}
	e := t[rec.CrlPartition]
	if e == nil {
		e = &tallied{}
		t[rec.CrlPartition] = e
	}
	e.n++
	e.last = rec.Serial // rec is the caller's, made for this certificate
}

// covered checks that no partition names more certificate records than
// its count says: a count lowered behind the store's back would let the
// shard take more certificates than its size, and its CRL more entries.
// Counts may exceed the records (the count never goes down; retention may
// purge records). The error names the partition's last certificate.
func (t shardTally) covered(meta engine.Bucket) error {
	for partition, e := range t {
		counted, err := shardCount(meta, partition)
		if err != nil {
			return err
		}
		if counted < e.n {
			return &UnexplainedError{Serial: normalSerial(fmt.Sprintf("%x", e.last)), Reason: fmt.Sprintf(
				"its CRL partition %s names %d certificates and the partition's shard count says %d: lowered behind the CA's back, the shard would take more than its size",
				partition, e.n, counted)}
		}
	}
	return nil
}
