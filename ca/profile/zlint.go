package profile

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// ErrLint is wrapped by Lint's error when a lint fails.
var ErrLint = errors.New("profile: certificate fails RFC 5280 lints")

// rfc5280Lints is zlint's registry cut down to the RFC 5280 lints, built
// once. The CA/Browser Forum, Mozilla, Apple, ETSI and community lints are
// for the web PKI and do not apply to JPKI certificates.
var rfc5280Lints = sync.OnceValues(func() (lint.Registry, error) {
	return lint.GlobalRegistry().Filter(lint.FilterOptions{
		IncludeSources: lint.SourceList{lint.RFC5280},
	})
})

// Lint runs zlint's RFC 5280 lints on a DER certificate. It returns an
// error wrapping ErrLint that names every lint with status error or fatal,
// and, apart from it, one line per lint with status warning. Notices and
// passes are not reported. Lint is safe for concurrent use.
func Lint(der []byte) (warnings []string, err error) {
	registry, err := rfc5280Lints()
	if err != nil {
		return nil, fmt.Errorf("profile: zlint registry: %w", err)
	}
	cert, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: zcrypto cannot parse it: %v", ErrLint, err)
	}
	results := zlint.LintCertificateEx(cert, registry).Results
	var failures []string
	for _, name := range slices.Sorted(maps.Keys(results)) {
		r := results[name]
		line := name
		if r.Details != "" {
			line += ": " + r.Details
		}
		switch r.Status {
		case lint.Warn:
			warnings = append(warnings, line)
		case lint.Error, lint.Fatal:
			failures = append(failures, line+" ("+r.Status.String()+")")
		}
	}
	if len(failures) > 0 {
		return warnings, fmt.Errorf("%w: %s", ErrLint, strings.Join(failures, "; "))
	}
	return warnings, nil
}
