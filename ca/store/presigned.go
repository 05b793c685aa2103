package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store/engine"
	"github.com/shomei-pki/shomei/ca/validity"
)

// Pre-signed OCSP responses (R-R6, issue 12). The OCSP pre-signer (package
// ocsp, Presigner) keeps one response for every live certificate in
// ocsp_responses and its work in ocsp_queue, ordered by due time:
//
//   - A status change (appendChange: issuance, revocation) drops the
//     certificate's response and its queued refresh and queues it at
//     once (due 0), in the transaction that changes the status: from its
//     commit no reader finds a response giving the old status.
//   - A response is stored only while the certificate is ISSUED and its
//     revocation is the one the response gives (SavePresigned), which
//     refuses a response signed from a status read before a change. A
//     stored response queues its own refresh (refresh_at), and the one it
//     replaces leaves the queue with it.
//   - So the queue holds, per certificate, its pending change (due 0), a
//     retry, or the refresh of its stored response: its length is bounded
//     by the certificates.
//   - Certificates recorded before pre-signing existed are queued once by
//     a walk of the certificates (PresignBackfill), resumable, its
//     progress kept in meta "ocsp_backfill".

// PresignedResponse is the pre-signed OCSP response of serial, or nil.
func (s *Store) PresignedResponse(serial []byte) (*storev1.PresignedResponse, error) {
	var rec *storev1.PresignedResponse
	err := s.db.View(func(tx engine.Tx) error {
		v := tx.Bucket(bucketOCSPResponses).Get(serial)
		if v == nil {
			return nil
		}
		var err error
		rec, err = decodePresigned(serial, v)
		return err
	})
	return rec, err
}

func decodePresigned(serial, v []byte) (*storev1.PresignedResponse, error) {
	rec := new(storev1.PresignedResponse)
	if err := proto.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("store is damaged: pre-signed OCSP response %x: %w", serial, err)
	}
	return rec, nil
}

// queueKey is the ocsp_queue key of serial due at due (Unix seconds; 0:
// at once).
func queueKey(due uint64, serial []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(serial)), due), serial...)
}

// dueOf is the queue's due time of t: Unix seconds, at least 1 (0 is a
// status change).
func dueOf(t time.Time) uint64 {
	return uint64(max(t.Unix(), 1))
}

// requeuePresigned queues serial at once: its status changed
// (appendChange). A revocation first drops serial's pre-signed response
// and its queued refresh; a stored response that does not decode is
// dropped all the same (its refresh, if any, costs one more signature when
// it comes due). An issuance has none to drop: the certificate was PENDING
// until this transaction, and a response is stored only for an ISSUED one
// (SavePresigned), so the look is skipped, a query per certificate issued
// inside the writers' lock with PostgreSQL.
func requeuePresigned(tx engine.Tx, serial []byte, issued bool) error {
	if !issued {
		if err := dropPresigned(tx, serial); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketOCSPQueue).Put(queueKey(0, serial), nil)
}

// dropPresigned deletes serial's pre-signed response and its refresh.
func dropPresigned(tx engine.Tx, serial []byte) error {
	responses := tx.Bucket(bucketOCSPResponses)
	v := responses.Get(serial)
	if v == nil {
		return nil
	}
	if old, err := decodePresigned(serial, v); err == nil && old.GetRefreshAt().IsValid() {
		if err := tx.Bucket(bucketOCSPQueue).Delete(queueKey(dueOf(old.RefreshAt.AsTime()), serial)); err != nil {
			return err
		}
	}
	return responses.Delete(serial)
}

// OCSPTask is one due entry of the pre-signing queue.
type OCSPTask struct {
	// Key is the queue entry.
	Key []byte
	// Serial names the certificate; Cert is its record, nil when there is
	// none.
	Serial []byte
	Cert   *storev1.Certificate
	// Revision is the status-change revision Cert was read at.
	Revision uint64
}

// PresignDue returns up to limit queue entries due at now, the earliest
// first (status changes before refreshes), each with its certificate's
// record, in one read transaction.
func (s *Store) PresignDue(now time.Time, limit int) ([]OCSPTask, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("store: pre-signing queue: %w: limit %d", ErrInvalidArgument, limit)
	}
	var out []OCSPTask
	err := s.db.View(func(tx engine.Tx) error {
		out = out[:0]
		certs := tx.Bucket(bucketCerts)
		rev := currentRevision(tx)
		c := tx.Bucket(bucketOCSPQueue).Cursor()
		until := uint64(max(now.Unix(), 0))
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if len(k) <= 8 {
				return fmt.Errorf("store is damaged: pre-signing queue key %x", k)
			}
			if binary.BigEndian.Uint64(k) > until {
				break
			}
			t := OCSPTask{Key: bytes.Clone(k), Serial: bytes.Clone(k[8:]), Revision: rev}
			rec, err := getCert(certs, t.Serial)
			switch {
			case err == nil:
				t.Cert = rec
			case !errors.Is(err, ErrNotFound):
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: pre-signing queue: %w", err)
	}
	return out, nil
}

// OCSPDone is what became of an OCSPTask.
type OCSPDone struct {
	// Key and Serial are the task's.
	Key, Serial []byte
	// Response, when set, is stored and its refresh queued, if the
	// certificate is ISSUED and revoked exactly when the response says.
	// Nil with Retry zero: the task is dropped with any stored response
	// (the certificate needs none: expired, never issued).
	Response *storev1.PresignedResponse
	// Retry, when set, queues the task again for then, if it is still
	// queued (a status change may have queued the serial anew meanwhile).
	Retry time.Time
}

// SavePresigned applies done in one write transaction and returns how many
// responses it stored. A response for a certificate whose status is no
// longer the one it gives is not stored: the change queued the serial
// again.
func (s *Store) SavePresigned(done []OCSPDone) (int, error) {
	for i, d := range done {
		if len(d.Key) <= 8 || len(d.Serial) == 0 || !bytes.Equal(d.Key[8:], d.Serial) {
			return 0, fmt.Errorf("store: save pre-signed OCSP responses: %w: done[%d] has no queue key for its serial", ErrInvalidArgument, i)
		}
		if r := d.Response; r != nil && (len(r.BasicResponse) == 0 || !r.GetThisUpdate().IsValid() || !r.GetNextUpdate().IsValid() || !r.GetRefreshAt().IsValid()) {
			return 0, fmt.Errorf("store: save pre-signed OCSP responses: %w: done[%d] response lacks its DER or times", ErrInvalidArgument, i)
		}
	}
	var stored int
	err := s.write(func(tx engine.Tx) error {
		stored = 0
		queue, certs := tx.Bucket(bucketOCSPQueue), tx.Bucket(bucketCerts)
		for _, d := range done {
			switch {
			case !d.Retry.IsZero():
				if queue.Get(d.Key) == nil {
					continue
				}
				if err := queue.Delete(d.Key); err != nil {
					return err
				}
				if err := queue.Put(queueKey(dueOf(d.Retry), d.Serial), nil); err != nil {
					return err
				}
			case d.Response == nil:
				if err := queue.Delete(d.Key); err != nil {
					return err
				}
				if err := dropPresigned(tx, d.Serial); err != nil {
					return err
				}
			default:
				rec, err := getCert(certs, d.Serial)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if rec.State != storev1.CertState_CERT_STATE_ISSUED || (rec.Revocation != nil) != d.Response.Revoked {
					continue
				}
				if err := dropPresigned(tx, d.Serial); err != nil {
					return err
				}
				if err := queue.Delete(d.Key); err != nil {
					return err
				}
				v, err := marshal(d.Response)
				if err != nil {
					return err
				}
				if err := tx.Bucket(bucketOCSPResponses).Put(d.Serial, v); err != nil {
					return err
				}
				if err := queue.Put(queueKey(dueOf(d.Response.RefreshAt.AsTime()), d.Serial), nil); err != nil {
					return err
				}
				stored++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: save pre-signed OCSP responses: %w", err)
	}
	return stored, nil
}

// Backfill progress in meta "ocsp_backfill": 0x00 ‖ the last serial
// looked at while the walk goes on, 0x01 once it has reached the end.
const (
	backfillWalking = 0x00
	backfillDone    = 0x01
)

// PresignBackfill queues, at once, up to limit certificates after the
// walk's last that are ISSUED, live at now, and have neither a
// pre-signed response nor a queued change: certificates recorded before
// the store pre-signed. It reads in one read transaction (the three
// buckets walked side by side, in serial order) and writes the queue
// entries and its progress in one write transaction. It reports done once
// the walk has reached the last certificate; from then on it does
// nothing, since every status change queues its certificate itself.
func (s *Store) PresignBackfill(now time.Time, limit int) (bool, error) {
	if limit <= 0 {
		return false, fmt.Errorf("store: pre-signing backfill: %w: limit %d", ErrInvalidArgument, limit)
	}
	var after, last []byte
	var queue [][]byte
	done, already := false, false
	err := s.db.View(func(tx engine.Tx) error {
		queue, last, done = queue[:0], nil, false
		p := tx.Bucket(bucketMeta).Get(metaOCSPBackfill)
		switch {
		case len(p) == 1 && p[0] == backfillDone:
			already = true
			return nil
		case len(p) > 1 && p[0] == backfillWalking:
			after = bytes.Clone(p[1:])
		case p != nil:
			return fmt.Errorf("store is damaged: meta %s is %x", metaOCSPBackfill, p)
		}
		certs := tx.Bucket(bucketCerts).Cursor()
		responses := tx.Bucket(bucketOCSPResponses).Cursor()
		changes := tx.Bucket(bucketOCSPQueue).Cursor()
		// The three walks start at after (nil: the first key); the
		// other two are advanced to each certificate below.
		k, v := seekAfter(certs, after)
		rk, _ := responses.Seek(after)
		ck, _ := changes.Seek(queueKey(0, after))
		n := 0
		for ; k != nil && n < limit; k, v = certs.Next() {
			n++
			last = bytes.Clone(k)
			// Advance the other two walks to k.
			for rk != nil && bytes.Compare(rk, k) < 0 {
				rk, _ = responses.Next()
			}
			for ck != nil && len(ck) > 8 && binary.BigEndian.Uint64(ck) == 0 && bytes.Compare(ck[8:], k) < 0 {
				ck, _ = changes.Next()
			}
			if rk != nil && bytes.Equal(rk, k) {
				continue
			}
			if ck != nil && len(ck) > 8 && binary.BigEndian.Uint64(ck) == 0 && bytes.Equal(ck[8:], k) {
				continue
			}
			rec := new(storev1.Certificate)
			if err := proto.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("store is damaged: certificate %x: %w", k, err)
			}
			if rec.State == storev1.CertState_CERT_STATE_ISSUED && validity.Live(rec.NotAfter.AsTime(), now) {
				queue = append(queue, last)
			}
		}
		done = k == nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: pre-signing backfill: %w", err)
	}
	if already {
		return true, nil
	}
	progress := []byte{backfillDone}
	if !done {
		progress = append([]byte{backfillWalking}, last...)
	}
	err = s.write(func(tx engine.Tx) error {
		q := tx.Bucket(bucketOCSPQueue)
		for _, serial := range queue {
			if err := q.Put(queueKey(0, serial), nil); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(metaOCSPBackfill, progress)
	})
	if err != nil {
		return false, fmt.Errorf("store: pre-signing backfill: %w", err)
	}
	return done, nil
}

// PresignStats counts the queue entries due at now, up to limit, and
// returns the thisUpdate of the stored response whose refresh comes first
// (the oldest, when every response has the same refresh interval; zero
// when none is stored).
func (s *Store) PresignStats(now time.Time, limit int) (backlog int, oldest time.Time, err error) {
	err = s.db.View(func(tx engine.Tx) error {
		backlog, oldest = 0, time.Time{}
		until := uint64(now.Unix())
		c := tx.Bucket(bucketOCSPQueue).Cursor()
		for k, _ := c.First(); k != nil && backlog < limit && len(k) > 8 && binary.BigEndian.Uint64(k) <= until; k, _ = c.Next() {
			backlog++
		}
		responses := tx.Bucket(bucketOCSPResponses)
		// The first refresh whose response is stored; retries of
		// certificates without one are skipped, a few at most.
		const look = 64
		n := 0
		for k, _ := c.Seek(queueKey(1, nil)); k != nil && n < look; k, _ = c.Next() {
			n++
			v := responses.Get(k[8:])
			if v == nil {
				continue
			}
			rec, err := decodePresigned(k[8:], v)
			if err != nil {
				return err
			}
			if dueOf(rec.GetRefreshAt().AsTime()) == binary.BigEndian.Uint64(k) {
				oldest = rec.GetThisUpdate().AsTime()
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("store: pre-signing statistics: %w", err)
	}
	return backlog, oldest, nil
}
