// Package freshness defines the one metric of how fresh revocation status
// is (R-R4): shomei_revocation_visible_seconds, from a revocation being
// recorded by the CA to it being visible, by where it became visible
// (via="ocsp", "crl", "replica").
//
// The CA's propagation (package propagation) and the OCSP replica
// (ocsp/replica) both observe it, so it lives here, in a leaf that imports
// no ca/... package: ocsp/... must not depend on the CA.
package freshness
