// Package audit makes the CA's audit log (R-K3) tamper-evident against an
// insider who can write the store file: checkpoints of the hash chain are
// signed by an audit key that lives in the HSM (KeyLabel), so rewriting any
// record a checkpoint covers, or dropping the log's tail past one, needs
// the HSM. The CA signs a checkpoint on start (covering whatever an older
// version wrote), every Every records or Interval, and at a clean stop;
// records after the last checkpoint are the unsigned tail, which a crash
// or a running CA leaves. Verify checks the chain, every checkpoint's
// signature and reconciles every certificate's state against the log
// (store.ReconcileAudit).
//
// What it cannot see: an insider who deletes records and every checkpoint
// after them leaves a shorter log with an older last checkpoint. Each
// checkpoint is therefore also logged (seq, hash; no personal data), so the
// operations log outside the store witnesses how far the log had reached.
package audit
