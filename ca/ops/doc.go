// Package ops is the operator's API on a running CA: the gRPC service
// shomei.ops.v1.Operations that shomeictl calls for everything touching a
// live CA (issue 11). It is three parts, each in its own file:
//
//   - Keys (keys.go): issuer key generations and their certificates,
//     link certificates included (R-K1, R-V7);
//   - Approvals (approvals.go): key operations and issuer compromise,
//     proposed by one operator and run once enough others approved (R-K1,
//     R-K2);
//   - Records (records.go): the audit log (R-K3), hot backup, delegated
//     OCSP responder certificates (R-R6), renewal notices.
//
// Only operators reach it: the gate in ca/service refuses every other
// client before the request is read (PermissionDenied). The operator's
// name comes from ca/caller (Operator).
package ops
