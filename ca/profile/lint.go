package profile

import "github.com/shomei-pki/shomei/internal/x509lint"

// ErrLint is wrapped by Lint's error when a lint fails.
var ErrLint = x509lint.ErrLint

// Lint runs zlint's RFC 5280 lints on a DER certificate: x509lint.Lint,
// which the profile's certificates and OCSP responder certificates share.
func Lint(der []byte) (warnings []string, err error) { return x509lint.Lint(der) }
