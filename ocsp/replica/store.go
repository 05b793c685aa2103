package replica

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/secfile"
	"github.com/shomei-pki/shomei/ocsp"
)

// Layout of the replica's bbolt file:
//
//	meta    "revision"                 uint64 BE: last CA revision applied
//	meta    "synced_at"                int64 BE unix nanoseconds: the CA's sent_at of the last message applied
//	meta    "issuers"                  cav1.ListIssuersResponse: the CA's issuer key generations
//	meta    "responder:" ‖ key label   DER of the responder certificate (responders.CertStore)
//	status  issuer ‖ 0x00 ‖ serial      cav1.CertificateStatus (recorded_at cleared)
//	responses serial                   storev1.PresignedResponse, signed by the replica's own responder keys
//	presign due (uint64 BE, Unix seconds; 0: at once) ‖ issuer ‖ 0x00 ‖ serial
//	                                   empty: the pre-signing queue (presigned.go)
//	meta    "presign_backfill"         0x00 ‖ last status key walked, or 0x01: done
var (
	bucketMeta      = []byte("meta")
	bucketStatus    = []byte("status")
	bucketResponses = []byte("responses")
	bucketPresign   = []byte("presign")

	metaRevision  = []byte("revision")
	metaSyncedAt  = []byte("synced_at")
	metaIssuers   = []byte("issuers")
	metaResponder = []byte("responder:")
)

var marshal = proto.MarshalOptions{Deterministic: true}.Marshal

// Store is a replica's copy of the CA's certificate statuses. It is safe
// for concurrent use.
type Store struct {
	db       *bolt.DB
	syncedAt atomic.Int64 // unix nanoseconds, mirrors meta synced_at
}

// Open opens or creates the replica file at path.
// A file its group or others may access, or a directory they may write,
// is refused: whoever could write it could make the replica vouch for a
// revoked certificate (issue 9 item 12).
func Open(path string) (*Store, error) {
	if err := secfile.CheckDir(path, "replica store"); err != nil {
		return nil, err
	}
	if err := secfile.Check(path, "replica store file"); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("replica store %s is in use by another process", path)
		}
		return nil, fmt.Errorf("replica store %s: %w", path, err)
	}
	s := &Store{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketStatus, bucketResponses, bucketPresign} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if v := tx.Bucket(bucketMeta).Get(metaSyncedAt); len(v) == 8 {
			s.syncedAt.Store(int64(binary.BigEndian.Uint64(v)))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("replica store %s: %w", path, err)
	}
	return s, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Revision is the last CA revision applied; 0 before the first snapshot
// completed.
func (s *Store) Revision() (uint64, error) {
	var rev uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		rev = revisionIn(tx)
		return nil
	})
	return rev, err
}

// revisionIn is the revision stored in tx's meta bucket (0: none).
func revisionIn(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(metaRevision); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// SyncedAt is when the replica was last known in sync with the CA (zero:
// never).
func (s *Store) SyncedAt() time.Time {
	if n := s.syncedAt.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Applied is what Apply changed.
type Applied struct {
	// Revoked are the serials that turned revoked.
	Revoked []*big.Int
	// RevokedRecordedAt are when the CA recorded those revocations (zero
	// when unknown, as in a snapshot), parallel to Revoked.
	RevokedRecordedAt []time.Time
	// Added counts certificates the replica did not know before.
	Added int
	// New are those certificates outside a snapshot: the responder may
	// have a cached "unknown" for them (ocsp.Config.UnknownReuse).
	New []*big.Int
	// Revision is the store's revision once the message is applied (a
	// snapshot page leaves it as it was).
	Revision uint64
}

// Apply stores one message of the CA's Follow stream in one transaction.
// Statuses only move forward: a revoked certificate is never made good
// again (R-R2), so replays and overlapping snapshot pages are harmless.
// The revision advances only with messages that are not snapshot pages,
// so a snapshot cut short starts again from the beginning.
func (s *Store) Apply(m *cav1.FollowResponse) (*Applied, error) {
	out := &Applied{}
	var synced int64
	if m.SentAt != nil {
		synced = m.SentAt.AsTime().UnixNano()
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStatus)
		for _, st := range m.Statuses {
			if st.Issuer == "" || len(st.Serial) == 0 {
				return errors.New("a status without issuer or serial")
			}
			key := statusKey(st.Issuer, st.Serial)
			old := new(cav1.CertificateStatus)
			changed := true
			if v := b.Get(key); v != nil {
				if err := proto.Unmarshal(v, old); err != nil {
					return fmt.Errorf("replica store is damaged: %x: %w", key, err)
				}
				if old.Revocation != nil {
					continue
				}
				changed = st.Revocation != nil
			} else {
				out.Added++
				if !m.Snapshot {
					out.New = append(out.New, new(big.Int).SetBytes(st.Serial))
				}
			}
			if st.Revocation != nil {
				out.Revoked = append(out.Revoked, new(big.Int).SetBytes(st.Serial))
				var at time.Time
				if st.RecordedAt != nil {
					at = st.RecordedAt.AsTime()
				}
				out.RevokedRecordedAt = append(out.RevokedRecordedAt, at)
			}
			keep := proto.Clone(st).(*cav1.CertificateStatus)
			keep.RecordedAt = nil
			v, err := marshal(keep)
			if err != nil {
				return err
			}
			if err := b.Put(key, v); err != nil {
				return err
			}
			if changed {
				// Its pre-signed response gives the old status.
				if err := requeuePresigned(tx, key); err != nil {
					return err
				}
			}
		}
		meta := tx.Bucket(bucketMeta)
		if !m.Snapshot {
			if err := meta.Put(metaRevision, binary.BigEndian.AppendUint64(nil, m.Revision)); err != nil {
				return err
			}
			if synced != 0 {
				if err := meta.Put(metaSyncedAt, binary.BigEndian.AppendUint64(nil, uint64(synced))); err != nil {
					return err
				}
			}
		}
		out.Revision = revisionIn(tx)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replica store: %w", err)
	}
	if !m.Snapshot && synced != 0 {
		s.syncedAt.Store(synced)
	}
	return out, nil
}

// Reset forgets every status and the revision, for a new snapshot (the CA
// refused to resume: it is another CA, or its store was replaced).
func (s *Store) Reset() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		// The pre-signed responses go with the statuses: the snapshot
		// queues every certificate again.
		for _, b := range [][]byte{bucketStatus, bucketResponses, bucketPresign} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Delete(metaRevision)
	})
}

// Status returns the stored status of issuer's serial, or nil.
func (s *Store) Status(issuer string, serial []byte) (*cav1.CertificateStatus, error) {
	var out *cav1.CertificateStatus
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketStatus).Get(statusKey(issuer, serial))
		if v == nil {
			return nil
		}
		out = new(cav1.CertificateStatus)
		return proto.Unmarshal(v, out)
	})
	return out, err
}

// Count is how many certificates the replica knows.
func (s *Store) Count() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketStatus).Stats().KeyN
		return nil
	})
	return n, err
}

// SaveIssuers keeps the CA's issuer list, so the replica can start while
// the CA is down.
func (s *Store) SaveIssuers(list *cav1.ListIssuersResponse) error {
	v, err := marshal(list)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaIssuers, v) })
}

// Issuers returns the saved issuer list, or nil.
func (s *Store) Issuers() (*cav1.ListIssuersResponse, error) {
	var out *cav1.ListIssuersResponse
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(metaIssuers)
		if v == nil {
			return nil
		}
		out = new(cav1.ListIssuersResponse)
		return proto.Unmarshal(v, out)
	})
	return out, err
}

// ResponderCertificate implements responders.CertStore.
func (s *Store) ResponderCertificate(keyLabel string) ([]byte, error) {
	var der []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		der = bytes.Clone(tx.Bucket(bucketMeta).Get(append(bytes.Clone(metaResponder), keyLabel...)))
		return nil
	})
	return der, err
}

// SaveResponderCertificate implements responders.CertStore.
func (s *Store) SaveResponderCertificate(keyLabel string, der []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(append(bytes.Clone(metaResponder), keyLabel...), bytes.Clone(der))
	})
}

func statusKey(issuer string, serial []byte) []byte {
	k := make([]byte, 0, len(issuer)+1+len(serial))
	return append(append(append(k, issuer...), 0), serial...)
}

// Source answers OCSP from the replica (ocsp.Source). ThisUpdate is when
// the replica was last in sync with the CA, so responses say how fresh
// they are; once that is more than half the response validity old the
// responder refuses to answer (internalError) rather than vouch for a
// stale status. The issuers it answers for change with the CA's
// generations (SetIssuers, Generations).
type Source struct {
	store *Store
	names atomic.Pointer[map[string]string]            // issuer certificate DER → issuer name
	certs atomic.Pointer[map[string]*x509.Certificate] // issuer name → certificate
}

var _ ocsp.Source = (*Source)(nil)

// NewSource answers for issuers, by name.
func NewSource(st *Store, issuers map[string]*x509.Certificate) *Source {
	src := &Source{store: st}
	src.SetIssuers(issuers)
	return src
}

// SetIssuers replaces the issuers answered for, by name.
func (s *Source) SetIssuers(issuers map[string]*x509.Certificate) {
	names := make(map[string]string, len(issuers))
	certs := make(map[string]*x509.Certificate, len(issuers))
	for name, cert := range issuers {
		names[string(cert.Raw)] = name
		certs[name] = cert
	}
	s.names.Store(&names)
	s.certs.Store(&certs)
}

// Knows says whether the issuer generation named is answered for.
func (s *Source) Knows(name string) bool {
	for _, n := range *s.names.Load() {
		if n == name {
			return true
		}
	}
	return false
}

// Status implements ocsp.Source.
func (s *Source) Status(_ context.Context, is *ocsp.Issuer, serial *big.Int) (ocsp.Status, error) {
	synced := s.store.SyncedAt()
	if synced.IsZero() {
		return ocsp.Status{}, errors.New("the replica has not completed its first sync with the CA")
	}
	name, ok := (*s.names.Load())[string(is.Certificate.Raw)]
	if !ok {
		return ocsp.Status{}, errors.New("issuer not known to the replica")
	}
	st, err := s.store.Status(name, serial.Bytes())
	if err != nil {
		return ocsp.Status{}, err
	}
	// The stream sends issued certificates only: a serial the replica
	// does not hold is unknown.
	out := ocsp.RecordedStatus(st != nil, st.GetRevocation())
	out.ThisUpdate = synced
	return out, nil
}
