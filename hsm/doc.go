// Package hsm uses keys that live in a hardware security module, over PKCS#11.
//
// Shomei's issuer keys never leave the token: this package generates them
// inside it (private, sensitive, non-extractable) and signs with them through
// a [crypto.Signer], so the rest of the CA can use the standard library's
// certificate, CRL and OCSP builders without ever holding key material.
//
// A [Token] owns one PKCS#11 token, found by its label. It logs in once, keeps
// a bounded pool of sessions (one per concurrent signer; a shared session
// behind a lock is slower than one session per worker) and hands them out with
// a wait timeout, so a saturated HSM makes callers fail with
// [ErrPoolExhausted] rather than queue forever.
//
// Invariants:
//   - The PIN is only ever read from a file or an environment variable
//     ([PINSource]), never from a command-line flag.
//   - A key is found by label and CKA_ID, and exactly one private key must
//     match; a [Signer] opened for an issuer is checked against that issuer's
//     certificate (same public key, and a test signature that verifies) before
//     it is used.
//   - When the token reports that it went away (device error, token not
//     present, invalid session, …) the Token finalises and re-initialises the
//     module, finds the token again and logs in again on the next operation.
//     Signers stay valid across that: no process restart is needed when a
//     network HSM comes back (spec §5; the restart complaint is boulder#3468).
//   - Errors name what went wrong in words (wrong PIN, no such token, no such
//     key, HSM unavailable) and keep the PKCS#11 return code for operators.
package hsm
