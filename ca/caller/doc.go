// Package caller carries the authenticated caller of a request, as the
// gRPC boundary established it, to the domain that records it in the audit
// log (R-K3). It holds names only: a client's configured name, its kind,
// and how it proved itself. Never a token, never personal data (R-P4).
package caller
