// Package opsv1 is Shomei's operator API, generated from ops.proto (edit the
// .proto file, then `make proto`; never edit the *.pb.go files). This file is
// written by hand: `buf generate` only writes the *.pb.go files.
//
// One service, Operations, for operators only (clients with operator: true;
// every other caller is PERMISSION_DENIED before the request is read):
// issuer key generations and their link certificates (R-K1), two-person
// approval of rotation, retirement, key destruction and issuer compromise
// (R-K2), the audit log (R-K3), hot backup, delegated OCSP responder
// certificates (R-R6) and renewal notices. `shomeictl` is its client; the
// server is package ca/ops.
package opsv1
