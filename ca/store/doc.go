// Package store is the CA's durable state: the issuer key generations and the
// audit log, kept in one bbolt file. The records are the protobuf messages of
// package storev1 (api/shomei/store/v1); schema.go is the only place that
// says how they are laid out in the file.
//
// Invariants the store keeps:
//
//   - One process at a time. bbolt locks the file; a second Open waits
//     Options.Timeout and then fails with ErrLocked.
//   - A store is read only by code of the same schema version. Open refuses
//     any other version with ErrSchemaVersion and changes nothing.
//   - The issuer generations of a profile are 1, 2, … n with no gaps: the first
//     ones are recorded once, by InitIssuers, and each rotation adds exactly the
//     next one (AddIssuerKey). A profile has at most one ACTIVE generation;
//     recording a new ACTIVE generation supersedes the previous one (R-K1).
//     At most one is PENDING, and none is added while one is; its
//     activation (ActivateIssuerKey) supersedes the ACTIVE one in the same
//     transaction. A generation is RETIRED only when none of its
//     certificates is unexpired, checked in the transaction that records it
//     (RetireIssuerKey), and DESTROYED only from RETIRED or COMPROMISED
//     (generations.go).
//   - Every key operation is written in the same transaction as its audit
//     records, so neither is ever stored without the other (R-K3).
//   - The audit log is append-only and hash-chained (R-K3). Records are
//     numbered 1, 2, … n with no gaps; each one carries the SHA-256 of the
//     stored bytes of the one before it (the first carries none), and the meta
//     bucket holds the number and SHA-256 of the last one, so rewriting,
//     removing or adding records behind the store's back — the last one
//     included — is found by VerifyAudit. The store never rewrites or deletes
//     an audit record, and refuses to append to a log whose head does not
//     match its last record. The chain and its head live in the same file,
//     so someone who rewrites a record and then re-chains every later record
//     and the head is not detected by the chain alone: checkpoints anchor
//     it. A checkpoint (SaveAuditCheckpoint, signed by ca/audit with the
//     audit key in the HSM) names a record and the SHA-256 of its stored
//     bytes; VerifyAuditCheckpoints finds a rewrite under a checkpoint and a
//     log truncated below one.
//   - Every certificate's state is explained by the audit log: issued by an
//     issuance record, revoked by a revocation record with its reason (or a
//     renewal that superseded it), and it still says what its issuance
//     record says (profile, issuer generation, municipality, holder id,
//     expiry, notAfter: where and until when its revocation is published,
//     and who may see it). ReconcileAudit names the first that is not, so
//     a record changed behind the store's back (a revocation cleared, a
//     notAfter moved into the past to drop it from the CRL) is found.
//   - A delegated OCSP responder certificate is recorded PENDING with its
//     audit record before the issuer signs it (ReserveResponder), like an
//     end-entity certificate; a revoked responder's key is never reserved
//     again (R-R6).
//   - Buckets added after schema version 1 shipped (addedBuckets) are
//     created when an older store is opened; the version does not change.
//   - An event id (per municipality) is applied once (R-R1). Its result is
//     kept with the SHA-256 of the event's payload; a later request with the
//     same id is answered with the first result only if its digest is the
//     same, and fails with ErrEventConflict otherwise. Events kept before
//     the digest was are matched by their audit record (eventreplay.go).
//     An event whose holder has no certificate in the municipality fails
//     with ErrUnknownHolder when the caller asks (KnownHolder) and records
//     nothing.
//   - A revocation's invalidityDate is never before the certificate's
//     notBefore (R-R3).
//   - Every revocation of a certificate (events and counter requests, issuer
//     compromise, a renewal's supersede) is written by one function,
//     revokeRecord: the record, its status change, its CRL entry in the
//     partition's index and the partition touched, and the key block when
//     asked, in the caller's transaction; a revoked certificate keeps its
//     first revocation (R-R2).
//   - A certificate's pre-signed OCSP response (presigned.go) never gives
//     a status other than the recorded one: the transaction that records
//     a status change drops the response and queues the certificate for
//     pre-signing, and a response is stored only while the certificate is
//     ISSUED and revoked exactly when the response says.
//   - No CRL partition holds more certificates than the shard size its
//     reservations were checked against (R-R5, shards.go): each
//     partition's certificate records are counted in the transaction that
//     reserves one more, and a full partition is refused there, so the
//     bound holds across concurrent requests and CA processes. The count
//     never goes down. A store from before the counts is counted when
//     opened.
//   - Expiry is judged by validity.Live alone: a certificate counts as live
//     (R-A4, renewal, event targets) and stays on its CRL (R-R5) through the
//     whole second of its notAfter, 23:59:59 JST of its expiry date.
//   - Audit records carry no personal data (spec R-P4). The store cannot check
//     this; callers must refer to people and certificates by opaque
//     identifiers and serial numbers only.
package store
