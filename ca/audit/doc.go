// Package audit makes the CA's audit log (R-K3) tamper-evident against an
// insider who can write the store file but cannot log in to the HSM:
// checkpoints of the hash chain are signed by an audit key that lives in
// the HSM (KeyLabel), so rewriting any record a checkpoint covers, or
// dropping the log's tail past one, needs the HSM. The CA signs a
// checkpoint on start (covering whatever an older version wrote), every
// Every records or Interval, and at a clean stop; records after the last
// checkpoint are the unsigned tail, which a crash or a running CA leaves.
//
// The HSM also witnesses each checkpoint (WitnessLabel): a private data
// object holding the last checkpoint with a write counter, both signed by
// the audit key. That closes what checkpoints alone cannot see, an insider
// deleting records together with every checkpoint after them, which leaves
// a shorter log with an older, validly signed, last checkpoint. Verify
// checks the chain, every checkpoint's signature, that the log holds the
// record the witness names with the hash it signed (else it was rewritten)
// and a checkpoint at or past it (else a *RollbackError: truncated, or
// restored from a backup), and reconciles every certificate's state against
// the log (store.ReconcileAudit).
//
// Invariants:
//   - The store commits a checkpoint before the HSM witnesses it: a crash
//     in between leaves the witness behind the log (which verifies, and
//     the next checkpoint catches up), never ahead of it.
//   - The witness only moves forward, and the Checkpointer never signs a
//     log that does not extend it (shorter, or another record at its seq).
//     The one way back is AcceptRollback, an operator's explicit decision
//     for a restored backup, which is itself audited, signed and witnessed.
//   - A witness object is replaced by creating the new one before
//     destroying the old (hsm.Token.WriteData): a crash leaves both, and the
//     highest counter among those that verify counts. Witness objects that
//     exist but none of which verifies are an error, never "no witness".
//   - A store older than the witness gets one at its first checkpoint (the
//     CA's start); until then Verify reports Witnessed 0.
//   - A clean stop seals the log (Close): the witness then says the log ends
//     exactly at its checkpoint. Nothing appends to a sealed log but a
//     writer that first opens it through the HSM (Open; the CA's first
//     checkpoint at start does), so a record after a sealed witness — forged
//     while the CA was stopped, chained as the store would — fails Verify
//     and is never signed over. A stop whose writers may still run
//     (CloseOpen), and a crash, leave the log open: then an unsigned tail is
//     accepted and signed at the next start, with a warning.
//
// What it still cannot see: an insider with the HSM PIN can sign anything
// the audit key signs, and delete the witness; one who can kill the CA
// (leaving the log open, as a crash does) can append records before its
// next start, which accepts an unsigned tail with a warning rather than
// refuse to start after every crash. Each checkpoint is also
// logged (seq, hash; no personal data), so the operations log outside the
// store and the HSM witnesses how far the log had reached.
package audit
