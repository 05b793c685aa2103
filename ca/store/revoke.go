package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/validity"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

// The RFC 5280 CRLReason codes the rule book uses (R-R1), from the one
// CRLReason table in internal/x509enc.
const (
	ReasonKeyCompromise        = x509enc.ReasonKeyCompromise
	ReasonCACompromise         = x509enc.ReasonCACompromise
	ReasonAffiliationChanged   = x509enc.ReasonAffiliationChanged
	ReasonCessationOfOperation = x509enc.ReasonCessationOfOperation
)

// RevokeRequest says which certificates to revoke and why. Targets are
// chosen inside the revoking transaction, so no certificate issued
// concurrently escapes an event.
type RevokeRequest struct {
	// Municipality and EventID make the request idempotent: a second request
	// with the same pair returns the first result and changes nothing.
	// Counter requests without an event id are idempotent by state (R-R2).
	Municipality, EventID string
	// HolderID with Profiles: the holder's pending or valid certificates of
	// those profiles, issued before InvalidityDate.
	HolderID string
	Profiles []storev1.Profile
	// Serials: these certificates (with HolderID set, they must be the
	// holder's).
	Serials [][]byte
	// Reason is the RFC 5280 reason code.
	Reason int32
	// InvalidityDate is the event's effective time (R-R3).
	InvalidityDate time.Time
	// Now is when the CA records the revocation (revocationDate).
	Now time.Time
	// BlockKeys blocks the revoked certificates' keys forever (R-V8).
	BlockKeys bool
	// Cause is recorded with each revocation (the event, the request).
	Cause string
	// Actor names who revokes in the audit records the store writes, one per
	// certificate revoked (R-K3).
	Actor string
	// Audit records to append in the same transaction, e.g. the event.
	Audit []*storev1.AuditRecord
	// PayloadSHA256 is the digest of the event's canonical payload, kept
	// with its result: a later request with the same event id is a replay
	// only if it carries the same digest; otherwise it fails with
	// ErrEventConflict (R-R1). Events recorded without a digest (before it
	// was kept) are matched by their audit record instead (see
	// legacyReplay).
	PayloadSHA256 []byte
	// KnownHolder refuses, with ErrUnknownHolder, a request whose HolderID
	// has no certificate in Municipality (a replay is still answered).
	KnownHolder bool
	// LaterIssued also targets the holder's certificates issued after
	// InvalidityDate (a death reported after the fact ends those too).
	LaterIssued bool
}

// Errors of event requests (R-R1).
var (
	// ErrEventConflict: the event id was used before for another payload.
	ErrEventConflict = errors.New("event id already used for a different event")
	// ErrUnknownHolder: no certificate was ever issued to the holder in
	// that municipality.
	ErrUnknownHolder = errors.New("no such holder in this municipality")
)

// RevokeResult is what a revocation did.
type RevokeResult struct {
	// Replayed: the event was applied before; this is its first result.
	Replayed bool
	// Revoked lists the targets: revoked now, or already revoked before.
	Revoked []*storev1.RevokedEntry
	// Revision is the status-change revision after the request.
	Revision uint64
}

// Revoke revokes the certificates r selects, in one transaction with their
// key blocks, the status-change log, the event's result and the audit
// records. Revocation is permanent; an already revoked certificate keeps its
// first revocation and is reported as such (R-R2).
func (s *Store) Revoke(r RevokeRequest) (*RevokeResult, error) {
	if r.Reason < 0 || r.Now.IsZero() || r.InvalidityDate.IsZero() || (r.HolderID == "" && len(r.Serials) == 0) {
		return nil, fmt.Errorf("store: revoke: %w: reason, times and targets are required", ErrInvalidArgument)
	}
	if r.Actor == "" {
		return nil, fmt.Errorf("store: revoke: %w: actor is required for the audit log", ErrInvalidArgument)
	}
	recs, err := prepareAudit(r.Audit, false, r.Now)
	if err != nil {
		return nil, fmt.Errorf("store: revoke: %w", err)
	}
	var res *RevokeResult
	err = s.write(func(tx engine.Tx) error {
		var err error
		res, err = revoke(tx, r, recs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: revoke: %w", err)
	}
	return res, nil
}

func revoke(tx engine.Tx, r RevokeRequest, audit []*storev1.AuditRecord) (*RevokeResult, error) {
	events, certs := tx.Bucket(bucketEvents), tx.Bucket(bucketCerts)
	if r.EventID != "" {
		if v := events.Get(eventKey(r.Municipality, r.EventID)); v != nil {
			var first storev1.EventResult
			if err := proto.Unmarshal(v, &first); err != nil {
				return nil, fmt.Errorf("store is damaged: event %s: %w", r.EventID, err)
			}
			if err := sameEvent(tx, r, &first); err != nil {
				return nil, err
			}
			return &RevokeResult{Replayed: true, Revoked: first.Revoked, Revision: currentRevision(tx)}, nil
		}
	}
	if r.KnownHolder && r.HolderID != "" {
		prefix := holderPrefix(r.Municipality, r.HolderID)
		if k, _ := tx.Bucket(bucketHolders).Cursor().Seek(prefix); k == nil || !bytes.HasPrefix(k, prefix) {
			return nil, fmt.Errorf("holder of municipality %s: %w", r.Municipality, ErrUnknownHolder)
		}
	}

	// Choose the targets.
	var targets []*storev1.Certificate
	seen := map[string]bool{}
	add := func(rec *storev1.Certificate) {
		if !seen[string(rec.Serial)] {
			seen[string(rec.Serial)] = true
			targets = append(targets, rec)
		}
	}
	for _, serial := range r.Serials {
		rec, err := getCert(certs, serial)
		if err != nil {
			return nil, err
		}
		if (r.HolderID != "" && (rec.HolderId != r.HolderID || rec.MunicipalityCode != r.Municipality)) ||
			rec.State == storev1.CertState_CERT_STATE_ABANDONED {
			return nil, fmt.Errorf("certificate %x: %w", serial, ErrNotFound)
		}
		add(rec)
	}
	if r.HolderID != "" && len(r.Profiles) > 0 {
		prefix := holderPrefix(r.Municipality, r.HolderID)
		c := tx.Bucket(bucketHolders).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			p, serial, ok := decodeHolderKey(prefix, k)
			if !ok || !slices.Contains(r.Profiles, p) {
				continue
			}
			rec, err := getCert(certs, serial)
			if err != nil {
				return nil, err
			}
			affected := rec.State == storev1.CertState_CERT_STATE_PENDING || rec.State == storev1.CertState_CERT_STATE_ISSUED
			// Expired certificates need no revocation; certificates issued
			// after the event's effective time already reflect it.
			if affected && validity.Live(rec.NotAfter.AsTime(), r.Now) && (r.LaterIssued || !rec.NotBefore.AsTime().After(r.InvalidityDate)) {
				add(rec)
			}
		}
	}

	res := &RevokeResult{}
	for _, rec := range targets {
		entry := &storev1.RevokedEntry{Serial: rec.Serial, Profile: rec.Profile}
		if rec.Revocation != nil {
			entry.Revocation, entry.AlreadyRevoked = rec.Revocation, true
			res.Revoked = append(res.Revoked, entry)
			continue
		}
		err := revokeRecord(tx, rec, &storev1.Revocation{RevokedAt: timestamppb.New(r.Now), Reason: r.Reason,
			InvalidityDate: timestamppb.New(invalidityFor(rec, r.InvalidityDate)), Cause: r.Cause}, r.BlockKeys)
		if err != nil {
			return nil, err
		}
		entry.Revocation = rec.Revocation
		res.Revoked = append(res.Revoked, entry)
		audit = append(audit, revocationAudit(rec, r.Now, r.Actor, r.Cause, r.BlockKeys))
	}
	if r.EventID != "" {
		v, err := marshal(&storev1.EventResult{MunicipalityCode: r.Municipality, EventId: r.EventID,
			AppliedAt: timestamppb.New(r.Now), Revoked: res.Revoked, PayloadSha256: r.PayloadSHA256})
		if err != nil {
			return nil, err
		}
		if err := events.Put(eventKey(r.Municipality, r.EventID), v); err != nil {
			return nil, err
		}
	}
	if err := appendAudit(tx, audit); err != nil {
		return nil, err
	}
	res.Revision = currentRevision(tx)
	return res, nil
}

// invalidityFor is rec's invalidityDate (R-R3) for a revocation invalid
// since t: a certificate cannot have become invalid before it existed, so
// never before its notBefore.
func invalidityFor(rec *storev1.Certificate, t time.Time) time.Time {
	if nb := rec.NotBefore.AsTime(); rec.NotBefore != nil && t.Before(nb) {
		return nb
	}
	return t
}

// revocationAudit is the audit record of one certificate's revocation (R-K3).
func revocationAudit(rec *storev1.Certificate, now time.Time, actor, cause string, keyBlocked bool) *storev1.AuditRecord {
	return &storev1.AuditRecord{Time: timestamppb.New(now), Actor: actor, Action: ActionRevoke,
		Fields: []*storev1.AuditField{{Key: "serial", Value: fmt.Sprintf("%x", rec.Serial)},
			{Key: "reason", Value: fmt.Sprint(rec.Revocation.Reason)}, {Key: "cause", Value: cause},
			{Key: "key_blocked", Value: fmt.Sprint(keyBlocked)}}}
}

// errAlreadyRevoked: revokeRecord was asked to revoke a revoked
// certificate; its callers keep the first revocation (R-R2) before that.
var errAlreadyRevoked = errors.New("certificate is already revoked")

// revokeRecord writes the revocation of one certificate, the one way every
// revocation is written (events and counter requests, issuer-key
// compromise, a renewal's supersede): rec gets rev and is stored; the
// change enters the status-change log at rev's revocation time, with the
// certificate's CRL entry in its partition's index and the partition
// touched so that its CRL is published again (appendChange); with blockKey
// the certificate's public key is blocked forever (R-V8), blamed on rev's
// cause. A certificate that is already revoked keeps its first revocation
// (R-R2): that is errAlreadyRevoked, and nothing is written.
//
// The audit record is the caller's (revocationAudit): a renewal's own
// record covers the certificate it supersedes.
func revokeRecord(tx engine.Tx, rec *storev1.Certificate, rev *storev1.Revocation, blockKey bool) error {
	if rec.Revocation != nil {
		return fmt.Errorf("certificate %x: %w", rec.Serial, errAlreadyRevoked)
	}
	rec.Revocation = rev
	if err := putCert(tx.Bucket(bucketCerts), rec); err != nil {
		return err
	}
	now := rev.RevokedAt.AsTime()
	if err := appendChange(tx, rec, storev1.ChangeKind_CHANGE_KIND_REVOKED, now); err != nil {
		return err
	}
	if !blockKey {
		return nil
	}
	b := tx.Bucket(bucketBlocked)
	if b.Get(rec.PublicKeySha256) != nil {
		return nil
	}
	v, err := marshal(&storev1.BlockedKey{PublicKeySha256: rec.PublicKeySha256, BlockedAt: timestamppb.New(now),
		Serial: rec.Serial, Cause: rev.Cause})
	if err != nil {
		return err
	}
	return b.Put(rec.PublicKeySha256, v)
}

// appendChange appends a status change for rec. A revocation also enters the
// certificate into its partition's revoked index and touches the partition,
// so that its CRL is rebuilt; an issuance is for OCSP replicas only. Either
// drops the certificate's pre-signed OCSP response and queues it to be
// pre-signed at once (presigned.go).
func appendChange(tx engine.Tx, rec *storev1.Certificate, kind storev1.ChangeKind, now time.Time) error {
	if err := requeuePresigned(tx, rec.Serial, kind == storev1.ChangeKind_CHANGE_KIND_ISSUED); err != nil {
		return err
	}
	rev := currentRevision(tx) + 1
	v, err := marshal(&storev1.StatusChange{Revision: rev, Serial: rec.Serial, CrlPartition: rec.CrlPartition, Time: timestamppb.New(now), Kind: kind})
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketChanges).Put(binary.BigEndian.AppendUint64(nil, rev), v); err != nil {
		return err
	}
	if kind == storev1.ChangeKind_CHANGE_KIND_REVOKED && rec.CrlPartition != "" {
		entry, err := marshal(&storev1.Certificate{Serial: rec.Serial, NotAfter: rec.NotAfter, Revocation: rec.Revocation})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketEntries).Put(append(entryPrefix(rec.CrlPartition), rec.Serial...), entry); err != nil {
			return err
		}
		if err := touchPartition(tx, rec.CrlPartition, rev); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(metaRevision, binary.BigEndian.AppendUint64(nil, rev))
}

func currentRevision(tx engine.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(metaRevision); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Revision is the last status-change revision.
func (s *Store) Revision() (uint64, error) {
	var rev uint64
	err := s.db.View(func(tx engine.Tx) error { rev = currentRevision(tx); return nil })
	return rev, err
}

// ChangedCertificates calls fn for up to limit status changes after
// revision since, in order, each with its certificate's current record, all
// in one read transaction (an OCSP replica's feed).
func (s *Store) ChangedCertificates(since uint64, limit int, fn func(*storev1.StatusChange, *storev1.Certificate) error) error {
	return s.db.View(func(tx engine.Tx) error {
		certs := tx.Bucket(bucketCerts)
		c := tx.Bucket(bucketChanges).Cursor()
		n := 0
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, since+1)); k != nil && n < limit; k, v = c.Next() {
			ch := new(storev1.StatusChange)
			if err := proto.Unmarshal(v, ch); err != nil {
				return fmt.Errorf("store is damaged: change %x: %w", k, err)
			}
			rec, err := getCert(certs, ch.Serial)
			if err != nil {
				return fmt.Errorf("change %d: %w", ch.Revision, err)
			}
			if err := fn(ch, rec); err != nil {
				return err
			}
			n++
		}
		return nil
	})
}

// Changes calls fn for every status change after revision since, in order.
func (s *Store) Changes(since uint64, fn func(*storev1.StatusChange) error) error {
	return s.db.View(func(tx engine.Tx) error {
		c := tx.Bucket(bucketChanges).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, since+1)); k != nil; k, v = c.Next() {
			ch := new(storev1.StatusChange)
			if err := proto.Unmarshal(v, ch); err != nil {
				return fmt.Errorf("store is damaged: change %x: %w", k, err)
			}
			if err := fn(ch); err != nil {
				return err
			}
		}
		return nil
	})
}
