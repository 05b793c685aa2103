package store

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// ErrUnexplained means a certificate's recorded state is not what the audit
// log says happened to it: the certificate bucket was changed behind the
// store's back (R-K3). Errors wrapping it are *UnexplainedError.
var ErrUnexplained = errors.New("certificate state not explained by the audit log")

// UnexplainedError names the first certificate whose state the audit log
// does not explain.
type UnexplainedError struct {
	Serial string // hex, without leading zeros
	Reason string
}

func (e *UnexplainedError) Error() string {
	return fmt.Sprintf("%s: serial %s: %s", ErrUnexplained, e.Serial, e.Reason)
}

// Unwrap makes errors.Is(err, ErrUnexplained) hold.
func (e *UnexplainedError) Unwrap() error { return ErrUnexplained }

// The audit actions that change a certificate's state (shomeictl audit
// list names their numeric fields).
const (
	ActionIssue  = "certificate.issue"
	ActionRenew  = "certificate.renew"
	ActionRevoke = "certificate.revoke"
)

// explained is what the audit log says happened to one serial.
type explained struct {
	issued     bool
	revoked    bool
	reason     int32
	superseded bool // a renewal record supersedes it (reason 4, no revoke record)
	// keyBlocked: the revocation blocked the key for good (R-V8), or,
	// for a responder, made it one that is never certified again.
	keyBlocked bool
	// issuance holds the fields of the record that issued a holder's
	// certificate: what the certificate record must still say.
	issuance map[string]string
	// purged: a purge record removed it after retention (retention.go).
	purged bool
}

// ReconcileAudit checks, in one read transaction, that every certificate's
// and responder certificate's state is explained by the audit log: an
// issued certificate by an issuance record, a revocation by a revocation
// record with the same reason (or, for superseded, by the renewal that
// superseded it), that nothing the log issued or revoked is missing or
// un-revoked, that every key a revocation blocked (R-V8, a revoked
// responder's) is still blocked, and that every certificate is in its
// holder's index and its key among the used ones (indexed), and that no
// CRL partition names more certificates than its shard count (shards.go).
// It returns how many certificates it checked, and an
// *UnexplainedError naming the first that does not hold. It holds one entry
// per serial in memory (about 100 bytes each).
func (s *Store) ReconcileAudit() (int, error) {
	n := 0
	err := s.db.View(func(tx engine.Tx) error {
		log := map[string]*explained{}
		at := func(serialHex string) *explained {
			k := normalSerial(serialHex)
			if log[k] == nil {
				log[k] = &explained{}
			}
			return log[k]
		}
		err := tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
			var r storev1.AuditRecord
			if err := proto.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("audit record %x: %w", k, err)
			}
			f := fields(&r)
			switch r.Action {
			case ActionIssue, ActionRenew, ActionResponderCertify:
				e := at(f["serial"])
				e.issued = true
				if r.Action != ActionResponderCertify {
					e.issuance = f
				}
				if sup := f["supersedes"]; sup != "" {
					at(sup).superseded = true
				}
			case ActionRevoke, ActionResponderRevoke:
				e := at(f["serial"])
				reason, _ := strconv.ParseInt(f["reason"], 10, 32)
				e.revoked, e.reason = true, int32(reason)
				e.keyBlocked = e.keyBlocked || f["key_blocked"] == "true" || r.Action == ActionResponderRevoke
			case ActionPurge:
				for _, serial := range strings.Split(f["serials"], ",") {
					if serial != "" {
						at(serial).purged = true
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		// A key the log blocked must still be: deleting it from its
		// bucket would let a compromised key be certified again.
		blockedIn := func(b engine.Bucket, what string) func(serial, spki []byte) error {
			return func(serial, spki []byte) error {
				key := normalSerial(fmt.Sprintf("%x", serial))
				if e := log[key]; e != nil && e.keyBlocked && b.Get(spki) == nil {
					return &UnexplainedError{Serial: key, Reason: "the audit log revoked it and blocked its key, and the key is not in " + what + ": unblocked behind the CA's back"}
				}
				return nil
			}
		}
		keyBlocked, responderKeyRevoked := blockedIn(tx.Bucket(bucketBlocked), "the blocked keys"), blockedIn(tx.Bucket(bucketRevokedKeys), "the revoked responder keys")
		// check returns what the log says of serial, for the caller's
		// further checks.
		check := func(serial []byte, issued bool, rv *storev1.Revocation, state storev1.CertState) (*explained, error) {
			n++
			key := normalSerial(fmt.Sprintf("%x", serial))
			seen[key] = true
			e := log[key]
			if e == nil {
				e = &explained{}
			}
			bad := func(format string, args ...any) (*explained, error) {
				return nil, &UnexplainedError{Serial: key, Reason: fmt.Sprintf(format, args...)}
			}
			switch {
			case e.purged:
				return bad("the audit log purged it after retention, and its record is stored: put back behind the CA's back")
			case issued && !e.issued:
				return bad("it is issued, and no audit record issued it")
			case !issued && e.issued:
				return bad("an audit record issued it, and it is %s", state)
			case rv != nil && e.revoked && rv.Reason != e.reason:
				return bad("it is revoked with reason %d, and the audit log revoked it with reason %d", rv.Reason, e.reason)
			case rv != nil && !e.revoked && !(e.superseded && rv.Reason == ReasonSuperseded):
				return bad("it is revoked (reason %d), and no audit record revoked it", rv.Reason)
			case rv == nil && e.revoked:
				return bad("the audit log revoked it (reason %d), and it is not revoked: un-revoked behind the CA's back", e.reason)
			case rv == nil && e.superseded && issued:
				return bad("a renewal superseded it, and it is not revoked: un-revoked behind the CA's back")
			}
			return e, nil
		}
		entries, holders, usedKeys := tx.Bucket(bucketEntries), tx.Bucket(bucketHolders), tx.Bucket(bucketKeys)
		shards := shardTally{}
		err = tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
			var rec storev1.Certificate
			if err := proto.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("certificate %x: %w", k, err)
			}
			shards.add(&rec)
			e, err := check(rec.Serial, rec.State == storev1.CertState_CERT_STATE_ISSUED, rec.Revocation, rec.State)
			if err != nil {
				return err
			}
			if err := keyBlocked(rec.Serial, rec.PublicKeySha256); err != nil {
				return err
			}
			if err := indexed(holders, usedKeys, &rec); err != nil {
				return err
			}
			if e.issuance != nil {
				if err := issuedAsRecorded(&rec, e.issuance); err != nil {
					return err
				}
			}
			return inCRLIndex(entries, &rec)
		})
		if err != nil {
			return err
		}
		if err := shards.covered(tx.Bucket(bucketMeta)); err != nil {
			return err
		}
		err = tx.Bucket(bucketResponders).ForEach(func(k, v []byte) error {
			var rec storev1.ResponderCertificate
			if err := proto.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("responder certificate %x: %w", k, err)
			}
			// A responder's record is written with its audit record, before
			// it is signed: pending and abandoned ones were audited too.
			if _, err := check(rec.Serial, true, rec.Revocation, rec.State); err != nil {
				return err
			}
			return responderKeyRevoked(rec.Serial, rec.PublicKeySha256)
		})
		if err != nil {
			return err
		}
		for serial, e := range log {
			if e.issued && !seen[serial] && !e.purged {
				return &UnexplainedError{Serial: serial, Reason: "the audit log issued it, and no certificate record exists: deleted?"}
			}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("store: reconcile audit: %w", err)
	}
	return n, nil
}

// indexed checks that a certificate is where the store looks for it: in
// its holder's index, by which events find what they revoke (a
// certificate left out stayed good through its holder's death or lost
// card, the event applied), and, unless abandoned, its key among the used
// ones, which no other certificate may have (R-A4).
func indexed(holders, usedKeys engine.Bucket, rec *storev1.Certificate) error {
	bad := func(why string) error {
		return &UnexplainedError{Serial: normalSerial(fmt.Sprintf("%x", rec.Serial)), Reason: why}
	}
	hk := holderKey(rec.MunicipalityCode, rec.HolderId, rec.Profile, rec.Serial)
	if k, _ := holders.Cursor().Seek(hk); !bytes.Equal(k, hk) {
		return bad("it is missing from its holder's index, so its holder's events would not revoke it: removed behind the CA's back")
	}
	if rec.State != storev1.CertState_CERT_STATE_ABANDONED && !bytes.Equal(usedKeys.Get(rec.PublicKeySha256), rec.Serial) {
		return bad("its key is not recorded as used by it, so another certificate could have it: freed behind the CA's back")
	}
	return nil
}

// issuedAsRecorded checks that a certificate record still says what its
// issuance record says: whose it is, which issuer key generation signed
// it and until when it is valid. Those decide where its revocation is
// published (the issuer's CRL, until notAfter) and who may see and revoke
// it, so an insider who changed them hid a revocation as surely as one
// who removed it. Fields an older issuance record lacks are not compared.
func issuedAsRecorded(rec *storev1.Certificate, f map[string]string) error {
	serial := normalSerial(fmt.Sprintf("%x", rec.Serial))
	profile := strings.ToLower(strings.TrimPrefix(rec.Profile.String(), "PROFILE_"))
	for _, c := range []struct{ key, got string }{
		{"profile", profile},
		{"issuer_generation", strconv.FormatUint(uint64(rec.IssuerGeneration), 10)},
		{"municipality", rec.MunicipalityCode},
		{"holder_id", rec.HolderId},
		{"expiry", rec.ExpiryDate},
		{"not_after", rec.NotAfter.AsTime().UTC().Format(time.RFC3339)},
		{"crl_partition", rec.CrlPartition},
	} {
		if want, ok := f[c.key]; ok && want != c.got {
			return &UnexplainedError{Serial: serial, Reason: fmt.Sprintf("its %s is %q, and the audit record that issued it says %q", c.key, c.got, want)}
		}
	}
	return nil
}

// inCRLIndex checks that a revoked certificate is in its partition's CRL
// index as the certificate record has it: the CRL is built from that index
// (PartitionEntries), so an entry removed, or given an earlier notAfter or
// another revocation, leaves the revocation out of every later CRL while
// the certificate record still says revoked.
func inCRLIndex(entries engine.Bucket, rec *storev1.Certificate) error {
	if rec.Revocation == nil || rec.CrlPartition == "" || rec.State != storev1.CertState_CERT_STATE_ISSUED {
		return nil
	}
	bad := func(reason string) error {
		return &UnexplainedError{Serial: normalSerial(fmt.Sprintf("%x", rec.Serial)), Reason: reason}
	}
	v := entries.Get(append(entryPrefix(rec.CrlPartition), rec.Serial...))
	switch {
	case v == nil:
		return bad(fmt.Sprintf("it is revoked, and partition %s's CRL index has no entry for it: its CRLs leave it out", rec.CrlPartition))
	case len(v) == 0:
		return nil // indexed before the index kept the entry itself: read from rec
	}
	e := new(storev1.Certificate)
	if err := proto.Unmarshal(v, e); err != nil {
		return bad(fmt.Sprintf("its CRL index entry does not decode: %v", err))
	}
	if !proto.Equal(e.NotAfter, rec.NotAfter) || !proto.Equal(e.Revocation, rec.Revocation) {
		return bad(fmt.Sprintf("its entry in partition %s's CRL index differs from the certificate (notAfter or revocation)", rec.CrlPartition))
	}
	return nil
}

func fields(r *storev1.AuditRecord) map[string]string {
	m := make(map[string]string, len(r.Fields))
	for _, f := range r.Fields {
		m[f.Key] = f.Value
	}
	return m
}

// normalSerial is a hex serial without leading zeros, lower case: audit
// records write serials both as %x of the bytes and as big.Int.Text(16).
func normalSerial(s string) string {
	s = strings.TrimLeft(strings.ToLower(s), "0")
	if s == "" {
		return "0"
	}
	return s
}
