// Package replica is the OCSP replica's side of replication (shomei-ocsp,
// R-R6): a bbolt copy of every certificate's status (Store), kept in step
// with the CA's Replication.Follow stream (Follower), answering OCSP from
// that copy (Source) and from the responses pre-signed over it, and having
// the replica's own responder keys certified by the CA over gRPC
// (RemoteCertifier).
//
// # Invariants
//
//   - Statuses only move forward: once revoked, a certificate stays revoked
//     in the copy whatever arrives later (R-R2). Replays, overlapping
//     snapshot pages and a resumed stream are therefore harmless.
//   - The stored revision is the CA's revision up to which every change is
//     applied. It advances only in the transaction that applies the
//     changes, so after a crash the replica resumes from where its copy
//     is, not from where the stream was. A snapshot counts only once its
//     last page arrived; one cut short starts again.
//   - A revoked serial's cached OCSP responses are dropped right after the
//     transaction that records it (Follower calls Invalidate), so the
//     replica answers revoked within the stream's delay (R-R4: 1 s).
//   - Responses carry thisUpdate = when the replica was last in sync with
//     the CA (the CA's sent_at; heartbeats every 5 s). With the CA down the
//     replica keeps answering from its copy until that is more than half the
//     response validity old; then it answers internalError rather than vouch
//     for a stale status.
//   - Reconnection is bounded both ways (backoff.go): the channel to the
//     CA and the Follower retry 100 ms doubling to 1 s, ±20 % jitter, so a
//     CA that is back is followed again within about a second, and one
//     that is down sees about one attempt a second. The CA ends the
//     streams itself when it stops (service.ReplicationConfig.Stopping).
//   - The CA refuses to resume from a revision ahead of its log (another CA,
//     or a replaced store): the copy is then reset and rebuilt from a
//     snapshot.
//   - Pre-signed responses (presigned.go; Source is the ocsp.PresignStore
//     of the replica's ocsp.Presigner), signed with the replica's own
//     responder keys and kept in its file, never give a status other than
//     the copy's: the transaction that applies a changed status drops the
//     certificate's response and queues it, and a response is stored only
//     while its status is the stored one. A replayed status that changes
//     nothing keeps its response. Reset drops them all with the statuses.
//     Their thisUpdate is the last sync, as Status answers, so a replica
//     cut off from the CA stops serving them at half the validity too.
package replica
