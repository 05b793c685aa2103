// Package issuer owns Shomei's two issuers — SIGN (署名用, signature) and AUTH
// (利用者証明用, user authentication) — and their key generations: the key
// ceremony that creates them in the HSM, their self-signed certificates, and
// finding a working signer for each.
//
// Invariants:
//   - Issuer keys are generated inside the HSM token and used only through it
//     (spec §5); the store keeps just their label, CKA_ID and certificate.
//   - Every issuer certificate is built twice: first signed by a throwaway
//     software key and checked against the issuer profile, then signed for
//     real in the HSM and checked again, including its self-signature.
//   - The ceremony records both issuers and its audit trail in one store
//     transaction: a store is either uninitialised or has both issuers
//     (R-K3 for the audit records).
//   - Issuer DNs are R-P1's, configurable; a rotated key keeps its profile's
//     DN and key algorithm and is told apart by its key identifier (R-K1).
//   - A rotation (Rotation.Next) makes the two link certificates between
//     the previous generation and the new one, NewWithOld and OldWithNew,
//     within the previous certificate's validity, each linted (zlint) and
//     checked (CheckLink) with a throwaway key before the HSM signs it;
//     a previous key that must not sign (compromised, R-K2) makes none.
package issuer
