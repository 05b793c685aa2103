package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"

	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store/engine"
)

// This file is the one place that says how the store is laid out in the bbolt
// file. Any incompatible change to it — a bucket, a key encoding, the meaning
// of a record — bumps schemaVersion.
//
//	bucket   key                                       value
//	meta     "schema_version"                          uint32, big-endian
//	meta     "audit_head"                              uint64 big-endian seq ‖ SHA-256 (40 bytes)
//	issuers  profile (1 byte) ‖ generation (uint32 BE)  storev1.IssuerKey
//	audit    seq (uint64 BE)                           storev1.AuditRecord
//	certs    serial (big-endian, no leading zeros)      storev1.Certificate
//	holders  municipality ‖ 0x00 ‖ holder_id ‖ 0x00 ‖   empty (index of a holder's certificates)
//	         profile (1 byte) ‖ serial
//	keys     SHA-256 of the holder SPKI (32 bytes)      serial of the certificate that certified it (R-P1)
//	blocked  SHA-256 of the holder SPKI (32 bytes)      storev1.BlockedKey (R-V8)
//	inquiries inquiry id                               storev1.Inquiry (R-A2)
//	events   municipality ‖ 0x00 ‖ event id             storev1.EventResult (R-R1 idempotency)
//	changes  revision (uint64 BE)                      storev1.StatusChange: issuance, revocation (R-R4)
//	meta     "status_revision"                         uint64 BE, the last revision in changes
//	meta     "ocsp_responder:" ‖ key label             DER of the key's current OCSP responder certificate (R-R6)
//	meta     "crl_shard:" ‖ partition name             uint64 BE: certificate records naming the partition (shards.go, R-R5)
//	meta     "crl_shards_counted"                      0x01 once the counts are kept (stores from before are counted at open)
//	partitions partition name                          storev1.CRLPartition (R-R5)
//	crl_entries partition ‖ 0x00 ‖ serial              storev1.Certificate with serial, not_after and revocation only
//	                                                   (revoked certificates of a partition; empty in older stores)
//	crls     partition name                            the partition's last CRL, DER
//	proposals proposal id                              storev1.Proposal (two-person approval, ca/ops)
//	ocsp_responses serial                              storev1.PresignedResponse: the certificate's pre-signed
//	                                                   OCSP response (presigned.go)
//	ocsp_queue due (uint64 BE, Unix seconds; 0: at     empty: the OCSP pre-signing queue, one entry per
//	         once) ‖ serial                            certificate at most (presigned.go)
//	meta     "ocsp_backfill"                           0x00 ‖ last serial walked, or 0x01: done (PresignBackfill)
//
// Records are stored as proto.Marshal with deterministic output. bbolt keeps
// keys in byte order, so issuers come out ordered by profile then generation
// and audit records in sequence.

// marshal encodes every stored record. Deterministic output keeps the bytes
// of a record, and so the audit chain's hashes, stable for a given record.
var marshal = proto.MarshalOptions{Deterministic: true}.Marshal

// schemaVersion is the layout this code reads and writes.
const schemaVersion uint32 = 1

// Buckets.
var (
	bucketMeta    = []byte("meta")
	bucketIssuers = []byte("issuers")
	bucketAudit   = []byte("audit")
	bucketCerts   = []byte("certs")
	bucketHolders = []byte("holders")
	bucketKeys    = []byte("keys")
	bucketBlocked = []byte("blocked")
	bucketInquiry = []byte("inquiries")
	bucketEvents  = []byte("events")
	bucketChanges = []byte("changes")
	bucketParts   = []byte("partitions")
	bucketEntries = []byte("crl_entries")
	bucketCRLs    = []byte("crls")
	// Added after schema version 1 was first released: created when an
	// older store is opened (prepare).
	bucketResponders  = []byte("responder_certs")
	bucketRevokedKeys = []byte("responder_revoked_keys")
	bucketCheckpoints = []byte("audit_checkpoints")
	bucketProposals   = []byte("proposals")
	// Pre-signed OCSP responses (issue 12; PostgreSQL migration 0002).
	bucketOCSPResponses = []byte("ocsp_responses")
	bucketOCSPQueue     = []byte("ocsp_queue")
)

// addedBuckets are created in an existing store that lacks them.
var addedBuckets = [][]byte{bucketResponders, bucketRevokedKeys, bucketCheckpoints, bucketProposals, bucketOCSPResponses, bucketOCSPQueue}

// allBuckets are created, in this order, when a store is new.
var allBuckets = [][]byte{bucketMeta, bucketIssuers, bucketAudit, bucketCerts, bucketHolders, bucketKeys, bucketBlocked, bucketInquiry, bucketEvents, bucketChanges, bucketParts, bucketEntries, bucketCRLs,
	bucketResponders, bucketRevokedKeys, bucketCheckpoints, bucketProposals, bucketOCSPResponses, bucketOCSPQueue}

// Keys in the meta bucket.
var (
	metaSchemaVersion = []byte("schema_version")
	metaAuditHead     = []byte("audit_head")
	metaRevision      = []byte("status_revision")
	metaResponder     = []byte("ocsp_responder:")
	metaOCSPBackfill  = []byte("ocsp_backfill")
	metaShardCount    = []byte("crl_shard:")
	metaShardsCounted = []byte("crl_shards_counted")
)

// shardCountKey is the meta key of a partition's certificate count.
func shardCountKey(partition string) []byte {
	k := make([]byte, 0, len(metaShardCount)+len(partition))
	return append(append(k, metaShardCount...), partition...)
}

func encodeSchemaVersion(v uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, v)
}

func decodeSchemaVersion(b []byte) (uint32, bool) {
	if len(b) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

const issuerKeyLen = 1 + 4

// issuerKey is the key of one issuer generation. The profile must fit in a
// byte; validateIssuerKey admits only the defined profiles.
func issuerKey(p storev1.Profile, generation uint32) []byte {
	k := make([]byte, 0, issuerKeyLen)
	k = append(k, byte(p))
	return binary.BigEndian.AppendUint32(k, generation)
}

// issuerPrefix is the key prefix of every generation of a profile.
func issuerPrefix(p storev1.Profile) []byte {
	return []byte{byte(p)}
}

func decodeIssuerKey(k []byte) (storev1.Profile, uint32, bool) {
	if len(k) != issuerKeyLen {
		return 0, 0, false
	}
	return storev1.Profile(k[0]), binary.BigEndian.Uint32(k[1:]), true
}

func auditKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

func decodeAuditKey(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

// auditHead is the last audit record: its seq and the SHA-256 of its stored
// bytes. An empty log has no head.
type auditHead struct {
	seq  uint64
	hash [sha256.Size]byte
}

func encodeAuditHead(h auditHead) []byte {
	b := binary.BigEndian.AppendUint64(nil, h.seq)
	return append(b, h.hash[:]...)
}

func decodeAuditHead(b []byte) (auditHead, bool) {
	var h auditHead
	if len(b) != 8+sha256.Size {
		return h, false
	}
	h.seq = binary.BigEndian.Uint64(b)
	copy(h.hash[:], b[8:])
	return h, h.seq > 0
}

// holderPrefix is the key prefix of every index entry of one holder. Holder
// ids are unique only within their municipality, so the municipality code
// leads. Neither may contain 0x00 (validated by callers).
func holderPrefix(municipality, holderID string) []byte {
	k := make([]byte, 0, len(municipality)+len(holderID)+2)
	k = append(k, municipality...)
	k = append(k, 0)
	k = append(k, holderID...)
	return append(k, 0)
}

// holderKey indexes one certificate of a holder.
func holderKey(municipality, holderID string, p storev1.Profile, serial []byte) []byte {
	k := holderPrefix(municipality, holderID)
	k = append(k, byte(p))
	return append(k, serial...)
}

// decodeHolderKey returns the profile and serial of an index key with the given prefix.
func decodeHolderKey(prefix, k []byte) (storev1.Profile, []byte, bool) {
	if len(k) < len(prefix)+2 {
		return 0, nil, false
	}
	return storev1.Profile(k[len(prefix)]), k[len(prefix)+1:], true
}

// eventKey is the key of an event: event ids are unique per municipality.
func eventKey(municipality, eventID string) []byte {
	k := make([]byte, 0, len(municipality)+1+len(eventID))
	k = append(k, municipality...)
	k = append(k, 0)
	return append(k, eventID...)
}

// entryPrefix is the key prefix of a partition's CRL entries.
func entryPrefix(partition string) []byte {
	return append([]byte(partition), 0)
}

// seekAfter moves c to the first key after after, or to the first key when
// after is nil: where a paged walk resumes from the last key it returned.
// It moves the cursor once (a query with PostgreSQL), twice only when
// after itself is still stored.
func seekAfter(c engine.Cursor, after []byte) (k, v []byte) {
	if after == nil {
		return c.First()
	}
	if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
		k, v = c.Next()
	}
	return k, v
}
