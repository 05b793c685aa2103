// Package propagation carries a certificate status change from the CA's
// store to everything that publishes status (R-R4): the OCSP responder's
// cache, the CRL publisher and the replication stream to OCSP replicas,
// and measures how long that takes (shomei_revocation_visible_seconds,
// package freshness).
//
// The CA is built first and told only a Notifier (its
// ca.Config.OnStatusChange is Notifier.Notify); the publishers are built
// after it, then handed to New with that Notifier. Nothing is assigned
// behind the CA's back: a notification that arrives before Run starts is
// kept and acted on when it does.
//
// # Invariants
//
//   - The store's status-change log is the source of truth; notifications
//     only make the reaction immediate. Run also polls the log (every
//     second) and the CRL publisher polls its partitions, so a missed
//     notification delays a change by at most a poll, never loses it.
//   - Every revoked serial's cached OCSP responses are dropped after the
//     transaction that recorded the revocation (the responder reads the
//     live store for anything not cached), so OCSP shows it within the
//     poll (R-R4: 1 s).
//   - A revocation counts as visible via="crl" once the publisher saved a
//     CRL of its partition reflecting the log at or past the revocation's
//     revision (R-R4: 60 s).
package propagation
