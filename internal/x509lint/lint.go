package x509lint

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	// Registers zlint's lints in its global registry, as the zlint package
	// does for LintCertificate: without it there would be none to run.
	_ "github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// ErrLint is wrapped by Lint's error when a lint fails.
var ErrLint = errors.New("certificate fails RFC 5280 lints")

// rfc5280Lints are zlint's certificate lints whose source is RFC 5280,
// found once, with the registry's configuration. The CA/Browser Forum,
// Mozilla, Apple, ETSI and community lints are for the web PKI and do not
// apply to JPKI certificates.
var rfc5280Lints = sync.OnceValues(func() (*lintSet, error) {
	registry, err := lint.GlobalRegistry().Filter(lint.FilterOptions{
		IncludeSources: lint.SourceList{lint.RFC5280},
	})
	if err != nil {
		return nil, err
	}
	if len(registry.CertificateLints().Lints()) == 0 {
		return nil, errors.New("no RFC 5280 certificate lints are registered")
	}
	return &lintSet{lints: registry.CertificateLints().Lints(), config: registry.GetConfiguration()}, nil
})

type lintSet struct {
	lints  []*lint.CertificateLint
	config lint.Configuration
}

// Lint runs zlint's RFC 5280 lints on a DER certificate. It returns an
// error wrapping ErrLint that names every lint with status error or fatal,
// and, apart from it, one line per lint with status warning, both sorted by
// lint name. Notices and passes are not reported. Lint is safe for
// concurrent use.
//
// It runs each lint as zlint.LintCertificateEx does (CertificateLint.Execute:
// configuration, CheckApplies, CheckEffective, a panic as Fatal), without
// the result set the CA does not read: LintCertificateEx sorts every lint
// name of the registry and fills a map of all results on each call, which
// cost a sixth of Lint's time.
func Lint(der []byte) (warnings []string, err error) {
	set, err := rfc5280Lints()
	if err != nil {
		return nil, fmt.Errorf("x509lint: zlint registry: %w", err)
	}
	cert, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: zcrypto cannot parse it: %v", ErrLint, err)
	}
	var failures []string
	for _, l := range set.lints {
		r := l.Execute(cert, set.config)
		if r == nil {
			failures = append(failures, l.Name+": no result (fatal)")
			continue
		}
		if r.Status < lint.Warn {
			continue
		}
		line := l.Name
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
	slices.Sort(warnings)
	if len(failures) > 0 {
		slices.Sort(failures)
		return warnings, fmt.Errorf("%w: %s", ErrLint, strings.Join(failures, "; "))
	}
	return warnings, nil
}
