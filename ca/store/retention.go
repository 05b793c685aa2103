package store

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store/engine"
)

// Retention (rule book §6): a certificate's issuance record is kept for
// RetentionYears after its notAfter, then purged. Purge walks the
// certificates a bounded slice at a time from where the last call
// stopped (the cursor is kept in meta), so a store of any size is walked
// a slice at a time, each looked at in a read transaction and purged in a
// short write transaction that never holds issuance up for long, and a
// crash only repeats a slice. What a slice purges is written in the same
// transaction as one audit record (ActionPurge) naming every serial, so
// the log still explains every certificate (ReconcileAudit) and its chain
// is untouched: the log itself is never purged (R-K3).
//
// A purged certificate leaves its record, its holder index entry and its
// CRL index entry (none remain after expiry). Its key stays among the used
// ones and, if it was blocked, among the blocked (R-P1, R-V8: a key is
// never certified again), and its status changes and event results stay:
// they hold no personal data.

// RetentionYears is how long after its notAfter a certificate's issuance
// record is kept (rule book §6).
const RetentionYears = 10

// ActionPurge is the audit action of a purge slice. Its fields: "serials",
// the purged serials (hex, comma-separated), "count", and "before": the
// notAfter bound (RFC 3339).
const ActionPurge = "certificate.purge"

// Purge bounds: how many certificates one slice looks at, and purges.
const (
	MaxPurgeScan  = 100_000
	MaxPurgeBatch = 2_000
)

// metaPurgeCursor is the serial after which the next slice starts.
var metaPurgeCursor = []byte("purge_cursor")

// PurgeResult is what one Purge slice did.
type PurgeResult struct {
	// Scanned certificates, of which Purged were past retention.
	Scanned, Purged int
	// Wrapped: the slice reached the last certificate; the next starts
	// again from the first.
	Wrapped bool
}

// PurgeExpired looks at up to scan certificates after the cursor and
// purges those whose notAfter is more than RetentionYears before now, at
// most batch of them, in one transaction with their audit record. actor is
// who runs it, for the audit record.
func (s *Store) PurgeExpired(now time.Time, scan, batch int, actor string) (PurgeResult, error) {
	var res PurgeResult
	if scan <= 0 || scan > MaxPurgeScan || batch <= 0 || batch > MaxPurgeBatch {
		return res, fmt.Errorf("store: purge: %w: scan %d must be 1..%d and batch %d 1..%d", ErrInvalidArgument, scan, MaxPurgeScan, batch, MaxPurgeBatch)
	}
	if actor == "" {
		return res, fmt.Errorf("store: purge: %w: empty actor", ErrInvalidArgument)
	}
	before := now.AddDate(-RetentionYears, 0, 0)
	// The slice is looked at in a read transaction: decoding scan records
	// inside the write transaction held every issuance's commit up behind
	// it, a slice a second for as long as a pass lasts (issue 12: a
	// tenth of a million-certificate store's issuance rate on
	// PostgreSQL). The write transaction then reads again only the
	// records found past retention, and purges each that still is.
	var (
		from, last []byte
		found      [][]byte
		scanned    int
		wrapped    bool
	)
	err := s.db.View(func(tx engine.Tx) error {
		found, last, scanned = nil, nil, 0
		from = bytes.Clone(tx.Bucket(bucketMeta).Get(metaPurgeCursor))
		c := tx.Bucket(bucketCerts).Cursor()
		k, v := seekAfter(c, from)
		for ; k != nil && scanned < scan && len(found) < batch; k, v = c.Next() {
			scanned++
			last = bytes.Clone(k)
			rec := new(storev1.Certificate)
			if err := proto.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("store is damaged: certificate %x: %w", k, err)
			}
			if pastRetention(rec, before) {
				found = append(found, last)
			}
		}
		wrapped = k == nil
		return nil
	})
	if err != nil {
		return PurgeResult{}, fmt.Errorf("store: purge: %w", err)
	}
	if afterPurgeRead != nil {
		afterPurgeRead()
	}
	err = s.write(func(tx engine.Tx) error {
		res = PurgeResult{}
		meta, certs := tx.Bucket(bucketMeta), tx.Bucket(bucketCerts)
		if !bytes.Equal(meta.Get(metaPurgeCursor), from) {
			return nil // another slice moved on meanwhile: the next starts there
		}
		res.Scanned, res.Wrapped = scanned, wrapped
		var purge []*storev1.Certificate
		for _, serial := range found {
			rec, err := getCert(certs, serial)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if pastRetention(rec, before) {
				purge = append(purge, rec)
			}
		}
		if wrapped {
			if err := meta.Delete(metaPurgeCursor); err != nil {
				return err
			}
		} else if err := meta.Put(metaPurgeCursor, last); err != nil {
			return err
		}
		if len(purge) == 0 {
			return nil
		}
		serials := make([]string, len(purge))
		for i, rec := range purge {
			serials[i] = fmt.Sprintf("%x", rec.Serial)
			if err := certs.Delete(rec.Serial); err != nil {
				return err
			}
			if err := tx.Bucket(bucketHolders).Delete(holderKey(rec.MunicipalityCode, rec.HolderId, rec.Profile, rec.Serial)); err != nil {
				return err
			}
			if rec.CrlPartition != "" {
				if err := tx.Bucket(bucketEntries).Delete(append(entryPrefix(rec.CrlPartition), rec.Serial...)); err != nil {
					return err
				}
			}
		}
		recs, err := prepareAudit([]*storev1.AuditRecord{{Actor: actor, Action: ActionPurge, Fields: []*storev1.AuditField{
			{Key: "serials", Value: strings.Join(serials, ",")},
			{Key: "count", Value: strconv.Itoa(len(serials))},
			{Key: "before", Value: before.UTC().Format(time.RFC3339)},
		}}}, true, s.now())
		if err != nil {
			return err
		}
		res.Purged = len(purge)
		return appendAudit(tx, recs)
	})
	if err != nil {
		return PurgeResult{}, fmt.Errorf("store: purge: %w", err)
	}
	return res, nil
}

// afterPurgeRead, when set (tests only), runs between a slice's read and
// its write transaction.
var afterPurgeRead func()

// pastRetention says whether a certificate's issuance record is due for
// purging: not pending, and its notAfter more than RetentionYears before
// now (before).
func pastRetention(rec *storev1.Certificate, before time.Time) bool {
	return rec.State != storev1.CertState_CERT_STATE_PENDING && rec.NotAfter.IsValid() && rec.NotAfter.AsTime().Before(before)
}
