// Package responders keeps Shomei's delegated OCSP responders (R-R6): one
// per issuer key generation, its key generated in the HSM on first use and
// never leaving it, its certificate signed by the issuer (through a
// Certifier: the CA itself, or the CA over gRPC for a replica) and renewed
// before it expires.
//
// # Invariants
//
//   - A Keeper only hands out a responder certificate that certifies the
//     HSM key it hands out with it, carries id-kp-OCSPSigning, verifies
//     against the issuer certificate and is valid now; a certificate the
//     Certifier returns is checked the same way before it is saved.
//   - A certificate with less than RenewBefore left is renewed. When
//     renewing fails, the current certificate is used until it expires
//     (a replica keeps answering while the CA is down) and renewal is
//     retried; past expiry, Current fails rather than hand out an expired
//     responder.
//   - The targets may change while the Keeper runs (SetTargets: a rotation
//     adds a generation, a retirement removes one, R-K1). A pass (Refresh,
//     or Maintain woken by the change) certifies a new target with its own
//     issuer and hands the responder the whole set at once
//     (ocsp.Responder.SetIssuers); a target that cannot be certified yet is
//     left out, or keeps its valid responder, and is retried within a
//     minute without holding up the others. Passes run one at a time.
//   - One key per (KeyPrefix, issuer generation): the key is reused across
//     renewals and restarts; two keys with the same label are an error, not
//     a choice.
package responders
