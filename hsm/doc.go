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
//   - Failures are met with the least disruptive recovery that mends them,
//     and an operation is tried again only after a recovery happened: a
//     session that went away is replaced; a lost login is redone; a token
//     that went away is looked for again; only a failed device or library
//     (or a token still missing after that) re-initialises the module, which
//     every Token on the library feels, with a backoff. Failures that say
//     nothing about the connection are reported as they are. Signers stay
//     valid across all of it: no process restart is needed when a network
//     HSM comes back (spec §5; the restart complaint is boulder#3468).
//   - Data objects ([Token.WriteData]) are private token objects, seen and
//     changed only after the login; a write creates the new object before
//     destroying the old, so a failure leaves the old value or both, never
//     neither, and is retried like a signature (its retry leaves one).
//     A search that finds none checks the login first: "none" means none.
//   - Key generation is never retried once the request reached the token: a
//     failure then may still have made the key, and the error says so.
//   - A PIN the token refused is never tried again by the same Token (each
//     wrong attempt brings the HSM's lockout closer), and none is tried when
//     the token says the next wrong one would lock it. A Token whose token
//     another Token of the process has logged in to must still give the PIN
//     that did.
//   - One module per library file (symbolic links resolved). A library that
//     other code in the process initialised first is never finalised.
//     Session handles of an earlier module epoch are never closed: the
//     library reuses their numbers.
//   - Every signature is verified with the key's public key before it is
//     returned: a faulty RSA-CRT signature would leak the private key.
//   - Errors name what went wrong in words (wrong PIN, no such token, no such
//     key, HSM unavailable) and keep the PKCS#11 return code for operators.
package hsm
