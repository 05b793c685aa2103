// Package cav1 is Shomei's gRPC API, generated from ca.proto and
// replication.proto (edit the .proto files, then `make proto`; never edit
// the *.pb.go files). This file is written by hand: `buf generate` only
// writes the *.pb.go files, so it survives regeneration and the drift check
// of `make proto-check`.
//
// Three services share the package:
//   - CertificateAuthority, for municipal systems: issue and renew a
//     resident's SIGN and AUTH certificates, look them up, open inquiries,
//     check characters against the JIS rule, revoke.
//   - Events, for resident-record change notices and counter reports that
//     revoke certificates (R-R1).
//   - Replication, for OCSP replicas (shomei-ocsp): follow every
//     certificate's status, list the issuer key generations and have a
//     delegated responder key certified (R-R6).
//
// A refused request is INVALID_ARGUMENT or FAILED_PRECONDITION with a
// google.rpc.BadRequest detail naming the field and the rule id; it changes
// nothing. Fields are never renumbered: a removed one is reserved.
package cav1
