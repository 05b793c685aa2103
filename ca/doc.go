// Package ca is Shomei's certificate authority core: it decides whether a
// municipal system's request may be granted under the rule book, issues and
// renews the two JPKI certificates, and answers questions about them.
//
// The issuance cycle (cycle.go), for every certificate:
//
//  0. check every count and length the caller supplied against the limits
//     of limits.go, before anything parses, verifies or looks anything up,
//     so that no request costs more than a valid one;
//  1. validate the request against every rule (R-A*, R-V*, R-P*); a refusal
//     names the field and the rule and changes nothing;
//  2. encode its TBSCertificate from the profile (package profile,
//     R-P1–R-P3), with the issuer's signature AlgorithmIdentifier;
//  3. lint: refuse a certificate larger than MaxCertificateBytes, parse
//     that TBS with a placeholder signature of the issuer key's
//     length, check it against the profile and run zlint's RFC 5280 lints
//     (zlint verifies no signature here: the names differ) — before the HSM
//     is asked for anything;
//  4. record its serial and to-be-signed bytes in the store as PENDING, in a
//     transaction that re-checks double issuance (R-A4), key reuse (R-P1),
//     blocked keys (R-V8) and the inquiry (R-A2), and that its CRL shard
//     is not full (R-R5: at most Config.CRLShardSize certificates a
//     partition); a shard found full sends the certificate back to step 2
//     in the next shard (shard.go), since the shard is in its TBS;
//  5. sign those exact bytes in the HSM; the signer verifies the signature
//     with the issuer key (checked against the issuer certificate at start);
//  6. store it as ISSUED (with renewal's superseded revocation and the audit
//     records, R-V4, R-K3, in one transaction) — only then is it returned.
//
// A crash between 4 and 6 leaves a PENDING record that the next start marks
// ABANDONED: the store always knows every serial the HSM may have signed,
// and a certificate a client received is always in the store.
//
// The linted TBSCertificate is byte for byte the one recorded and signed:
// no software signature is made, and the store refuses a signed certificate
// whose TBS is not the recorded one.
//
// Delegated OCSP responder certificates (CertifyResponder, R-R6) follow the
// same order: every check first (key RSA 2048–4096 or ECDSA P-256/P-384,
// notBefore within an hour of now, lifetime at most ResponderPolicy's
// MaxValidity, the key enrolled for that replica and that issuer, or held
// in the CA's own HSM for its own responders, and never revoked), then the
// record and its audit record as PENDING, then the issuer's signature, then
// ISSUED. The gRPC handler checks only the CSR's proof of possession.
//
// Issue (issue.go) and Renew (renew.go) differ only in how each profile's
// expiry is found (R-V1; R-V3, R-V4); the steps they share are plan.go's:
// prepare (steps 0–1 and the holder's situation), planProfile (the R-V5
// caps, R-K2, R-V7) and execute (the refusals, then cycle.go).
//
// The CA takes what it needs of the world as the small interfaces of
// deps.go, grouped by use: Store (*store.Store) and IssuerKeys
// (*hsm.Token). The package's tests run on a real bbolt store and SoftHSM2
// issuer keys, and wrap them only to inject faults.
//
// The issuer key generations (generations.go) are an immutable snapshot
// swapped atomically: a request keeps the generation it planned with,
// new requests take the new one, so a rotation (rotate.go: new key,
// self-signed certificate and link certificates, R-K1), the activation of
// a PENDING generation by the CA's timer, a retirement, a destruction or a
// compromise moves issuance without a restart and without failing a
// request. Each is recorded with its audit records first, then Reload
// checks the new keys in the HSM and swaps; Config.OnIssuersChanged says
// so. Older generations sign their CRLs and OCSP responders until retired
// (IssuerSigner). keylife.go makes R-V7 visible before it refuses: the
// shomei_issuer_remaining_seconds gauge and ListKeys's warning share
// planProfile's rule (outlives).
//
// Audit records name the authenticated caller (ca/caller), else Config.Actor.
//
// No personal data (names, addresses, dates of birth, holder ids) is logged
// or used as a metric label (R-P4); logs name certificates by serial.
package ca
