// Package service serves the shomei.ca.v1 CertificateAuthority gRPC API over
// package ca: it translates messages to and from the CA's types, checks that
// the caller may act for the municipality it names, and maps refusals onto
// gRPC status codes once, here, with google.rpc.BadRequest field violations
// that name the field and the rule (INVALID_ARGUMENT, FAILED_PRECONDITION).
package service
