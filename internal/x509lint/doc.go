// Package x509lint runs zlint's RFC 5280 certificate lints (115 of zlint
// v3.7.1) on a DER certificate, the "lint before the HSM signs" step of
// every certificate Shomei makes: holder certificates (ca/profile, ca) and
// delegated OCSP responder certificates (ocsp). The CA/Browser Forum,
// Mozilla, Apple, ETSI and community lints are for the web PKI and do not
// apply to JPKI certificates.
package x509lint
