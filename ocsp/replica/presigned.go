package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/validity"
	"github.com/shomei-pki/shomei/ocsp"
)

// The replica's pre-signed responses, signed with its own responder keys
// and kept in its own file, with the same rules as the CA's store
// (ca/store presigned.go): a status that changes (Apply) drops the
// certificate's response and queues it at once, in the transaction that
// applies it; a response is stored only while the status it gives is the
// stored one, and queues its refresh; a walk queues the statuses of a
// file older than pre-signing. Source is the ocsp.PresignStore over them.

var metaPresignBackfill = []byte("presign_backfill")

var _ ocsp.PresignStore = (*Source)(nil)

// presignKey is the queue key of the status key k due at due (Unix
// seconds; 0: at once).
func presignKey(due uint64, k []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(k)), due), k...)
}

// dueOf is the queue's due time of t: at least 1 (0 is a status change).
func dueOf(t time.Time) uint64 { return uint64(max(t.Unix(), 1)) }

// splitStatusKey is the issuer and serial of a status key.
func splitStatusKey(k []byte) (issuer string, serial []byte, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i <= 0 || i == len(k)-1 {
		return "", nil, false
	}
	return string(k[:i]), k[i+1:], true
}

// decodeStatus is the status stored under the status key k.
func decodeStatus(k, v []byte) (*cav1.CertificateStatus, error) {
	st := new(cav1.CertificateStatus)
	if err := proto.Unmarshal(v, st); err != nil {
		return nil, fmt.Errorf("replica store is damaged: %x: %w", k, err)
	}
	return st, nil
}

// liveStatus says whether st's certificate is live at now, so pre-signed
// (a status without notAfter counts as live).
func liveStatus(st *cav1.CertificateStatus, now time.Time) bool {
	return st.NotAfter == nil || validity.Live(st.NotAfter.AsTime(), now)
}

// requeuePresigned drops the pre-signed response of the status key k and
// its refresh, and queues k at once.
func requeuePresigned(tx *bolt.Tx, k []byte) error {
	if err := dropPresigned(tx, k); err != nil {
		return err
	}
	return tx.Bucket(bucketPresign).Put(presignKey(0, k), []byte{})
}

// dropPresigned deletes k's pre-signed response and its refresh. One that
// does not decode is dropped all the same.
func dropPresigned(tx *bolt.Tx, k []byte) error {
	_, serial, ok := splitStatusKey(k)
	if !ok {
		return fmt.Errorf("replica store: status key %x", k)
	}
	responses := tx.Bucket(bucketResponses)
	v := responses.Get(serial)
	if v == nil {
		return nil
	}
	old := new(storev1.PresignedResponse)
	if proto.Unmarshal(v, old) == nil && old.GetRefreshAt().IsValid() {
		if err := tx.Bucket(bucketPresign).Delete(presignKey(dueOf(old.RefreshAt.AsTime()), k)); err != nil {
			return err
		}
	}
	return responses.Delete(serial)
}

// PresignedResponse implements ocsp.ResponseStore.
func (s *Source) PresignedResponse(serial []byte) (*storev1.PresignedResponse, error) {
	var out *storev1.PresignedResponse
	err := s.store.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketResponses).Get(serial)
		if v == nil {
			return nil
		}
		out = new(storev1.PresignedResponse)
		return proto.Unmarshal(v, out)
	})
	if err != nil {
		return nil, fmt.Errorf("replica store: pre-signed response %x: %w", serial, err)
	}
	return out, nil
}

// PresignDue implements ocsp.PresignStore. Statuses are pre-signed as
// Status answers them (thisUpdate: when the replica was last in sync with
// the CA), so nothing is due before the first sync; a certificate that
// expired, or of an issuer the replica does not answer for, is dropped.
func (s *Source) PresignDue(now time.Time, limit int) ([]ocsp.PresignTask, error) {
	synced := s.store.SyncedAt()
	if synced.IsZero() {
		return nil, nil
	}
	certs := *s.certs.Load()
	var out []ocsp.PresignTask
	err := s.store.db.View(func(tx *bolt.Tx) error {
		out = out[:0]
		rev := revisionIn(tx)
		status := tx.Bucket(bucketStatus)
		c := tx.Bucket(bucketPresign).Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if len(k) <= 8 {
				return fmt.Errorf("replica store is damaged: queue key %x", k)
			}
			if binary.BigEndian.Uint64(k) > uint64(max(now.Unix(), 0)) {
				break
			}
			issuer, serial, ok := splitStatusKey(k[8:])
			if !ok {
				return fmt.Errorf("replica store is damaged: queue key %x", k)
			}
			t := ocsp.PresignTask{Key: bytes.Clone(k), Serial: new(big.Int).SetBytes(serial), Revision: rev, Drop: true}
			out = append(out, t)
			v := status.Get(k[8:])
			if v == nil || certs[issuer] == nil {
				continue
			}
			st, err := decodeStatus(k[8:], v)
			if err != nil {
				return err
			}
			if !liveStatus(st, now) {
				continue
			}
			t.Status = ocsp.RecordedStatus(true, st.GetRevocation())
			t.Status.ThisUpdate = synced
			t.Issuer, t.Drop = certs[issuer], false
			out[len(out)-1] = t
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replica store: pre-signing queue: %w", err)
	}
	return out, nil
}

// SavePresigned implements ocsp.PresignStore.
func (s *Source) SavePresigned(done []ocsp.PresignDone) (int, error) {
	stored := 0
	err := s.store.db.Update(func(tx *bolt.Tx) error {
		stored = 0
		queue, status := tx.Bucket(bucketPresign), tx.Bucket(bucketStatus)
		for _, d := range done {
			if len(d.Key) <= 8 {
				return fmt.Errorf("queue key %x", d.Key)
			}
			k := d.Key[8:]
			switch {
			case !d.Retry.IsZero():
				if queue.Get(d.Key) == nil {
					continue
				}
				if err := queue.Delete(d.Key); err != nil {
					return err
				}
				if err := queue.Put(presignKey(dueOf(d.Retry), k), []byte{}); err != nil {
					return err
				}
			case d.Response == nil:
				if err := queue.Delete(d.Key); err != nil {
					return err
				}
				if err := dropPresigned(tx, k); err != nil {
					return err
				}
			default:
				r := d.Response
				if !r.GetRefreshAt().IsValid() {
					return errors.New("a pre-signed response without refresh_at")
				}
				v := status.Get(k)
				if v == nil {
					continue
				}
				st, err := decodeStatus(k, v)
				if err != nil {
					return err
				}
				if (st.Revocation != nil) != r.Revoked {
					continue // changed since: Apply queued it again
				}
				if err := dropPresigned(tx, k); err != nil {
					return err
				}
				if err := queue.Delete(d.Key); err != nil {
					return err
				}
				enc, err := marshal(r)
				if err != nil {
					return err
				}
				_, serial, _ := splitStatusKey(k)
				if err := tx.Bucket(bucketResponses).Put(serial, enc); err != nil {
					return err
				}
				if err := queue.Put(presignKey(dueOf(r.RefreshAt.AsTime()), k), []byte{}); err != nil {
					return err
				}
				stored++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("replica store: save pre-signed responses: %w", err)
	}
	return stored, nil
}

// PresignBackfill implements ocsp.PresignStore: statuses stored before
// the replica pre-signed, live at now, without a response or a queued
// change, are queued, up to limit a call.
func (s *Source) PresignBackfill(now time.Time, limit int) (bool, error) {
	done := false
	err := s.store.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		p := meta.Get(metaPresignBackfill)
		var after []byte
		switch {
		case len(p) == 1 && p[0] == 1:
			done = true
			return nil
		case len(p) > 1 && p[0] == 0:
			after = bytes.Clone(p[1:])
		}
		responses, queue := tx.Bucket(bucketResponses), tx.Bucket(bucketPresign)
		c := tx.Bucket(bucketStatus).Cursor()
		k, v := c.First()
		if after != nil {
			if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		var last []byte
		for n := 0; k != nil && n < limit; k, v = c.Next() {
			n++
			last = bytes.Clone(k)
			_, serial, ok := splitStatusKey(k)
			if !ok || responses.Get(serial) != nil || queue.Get(presignKey(0, k)) != nil {
				continue
			}
			st, err := decodeStatus(k, v)
			if err != nil {
				return err
			}
			if !liveStatus(st, now) {
				continue
			}
			if err := queue.Put(presignKey(0, k), []byte{}); err != nil {
				return err
			}
		}
		if k == nil {
			done = true
			return meta.Put(metaPresignBackfill, []byte{1})
		}
		return meta.Put(metaPresignBackfill, append([]byte{0}, last...))
	})
	if err != nil {
		return false, fmt.Errorf("replica store: pre-signing backfill: %w", err)
	}
	return done, nil
}

// PresignStats implements ocsp.PresignStore.
func (s *Source) PresignStats(now time.Time, limit int) (int, time.Time, error) {
	backlog := 0
	var oldest time.Time
	err := s.store.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPresign).Cursor()
		for k, _ := c.First(); k != nil && backlog < limit && len(k) > 8 && binary.BigEndian.Uint64(k) <= uint64(max(now.Unix(), 0)); k, _ = c.Next() {
			backlog++
		}
		responses := tx.Bucket(bucketResponses)
		n := 0
		for k, _ := c.Seek(presignKey(1, nil)); k != nil && n < 64; k, _ = c.Next() {
			n++
			_, serial, ok := splitStatusKey(k[8:])
			if !ok {
				continue
			}
			v := responses.Get(serial)
			rec := new(storev1.PresignedResponse)
			if v == nil || proto.Unmarshal(v, rec) != nil {
				continue
			}
			if dueOf(rec.GetRefreshAt().AsTime()) == binary.BigEndian.Uint64(k) {
				oldest = rec.GetThisUpdate().AsTime()
				return nil
			}
		}
		return nil
	})
	return backlog, oldest, err
}
