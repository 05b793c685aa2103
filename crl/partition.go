package crl

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// Partition is what a CRL covers (R-R5): the name and URL written in its
// certificates' cRLDistributionPoints.
type Partition struct {
	// Name is the partition's name, e.g. "sign-g1-13221" (profile, issuer
	// key generation, municipality code[, shard]). It is the last element
	// of URL without ".crl".
	Name string
	// URL is the http URL the partition's CRL is published at:
	// <base>/<Name>.crl.
	URL string
	// DistributionPoint is the partition's directoryName
	// (profile.CRLDistributionPointName).
	DistributionPoint x509enc.DN
}

var (
	oidExtCRLDistributionPoints    = x509enc.OIDExtCRLDistributionPoints
	oidExtIssuingDistributionPoint = x509enc.OIDExtIssuingDistributionPoint
)

// validate reports every problem of p through fail, naming fields under
// prefix ("Request.Partition").
func (p Partition) validate(prefix string, fail func(field, format string, args ...any)) {
	if msg := checkName(p.Name); msg != "" {
		fail(prefix+".Name", "%s", msg)
	}
	if msg := checkURL(p.URL, p.Name); msg != "" {
		fail(prefix+".URL", "%s", msg)
	}
	if err := p.DistributionPoint.Validate(); err != nil {
		fail(prefix+".DistributionPoint", "%v", err)
	}
}

// checkName says why name is not a partition name, or "". Names are
// file names in URLs: ASCII letters, digits, '-', '_' and '.', not
// starting with '.'.
func checkName(name string) string {
	if name == "" {
		return "required"
	}
	if len(name) > 64 {
		return "longer than 64 characters"
	}
	if name[0] == '.' {
		return "must not start with '.'"
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.') {
			return "only ASCII letters, digits, '-', '_' and '.'"
		}
	}
	return ""
}

// checkURL says why u is not the URL of partition name, or "": an
// absolute http URL (R-R5; https would make revocation checking depend on
// TLS, which depends on revocation checking) in IA5String characters,
// with no user, query or fragment, whose last path element is name+".crl"
// as ca/issue.go builds it.
func checkURL(u, name string) string {
	if u == "" {
		return "required"
	}
	for _, r := range u {
		if r <= ' ' || r > '~' {
			return "must be printable ASCII without spaces (IA5String)"
		}
	}
	parsed, err := url.Parse(u)
	if err != nil || parsed.Host == "" || parsed.User != nil || parsed.RawQuery != "" || parsed.ForceQuery || parsed.Fragment != "" {
		return "not an absolute URL with a host and no user, query or fragment"
	}
	if parsed.Scheme != "http" {
		return fmt.Sprintf("scheme %q; CRLs are published over http (R-R5)", parsed.Scheme)
	}
	if name != "" && path.Base(parsed.Path) != name+".crl" {
		return fmt.Sprintf("does not end in /%s.crl, the partition's name", name)
	}
	return ""
}

// nameFromURL is the partition name a URL ends in, or "".
func nameFromURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return ""
	}
	name, ok := strings.CutSuffix(path.Base(parsed.Path), ".crl")
	if !ok {
		return ""
	}
	return name
}

// marshalCRLDistributionPoints is the value of the cRLDistributionPoints
// extension of p's certificates (x509enc.MarshalCRLDistributionPoints).
func (p Partition) marshalCRLDistributionPoints() ([]byte, error) {
	name, err := p.DistributionPoint.Marshal()
	if err != nil {
		return nil, err
	}
	return x509enc.MarshalCRLDistributionPoints(p.URL, name)
}

// marshalIssuingDistributionPoint is the value of p's CRL's
// issuingDistributionPoint extension: the same distribution point name as
// its certificates' and onlyContainsUserCerts TRUE, nothing else (RFC 5280
// §5.2.5; x509enc.MarshalIssuingDistributionPoint).
func (p Partition) marshalIssuingDistributionPoint() ([]byte, error) {
	name, err := p.DistributionPoint.Marshal()
	if err != nil {
		return nil, err
	}
	return x509enc.MarshalIssuingDistributionPoint(p.URL, name)
}

// PartitionOf reads the partition a certificate was issued into from its
// cRLDistributionPoints: one DistributionPoint whose fullName is the URL
// then the directoryName, as ca/profile writes it. The name is the URL's
// last element without ".crl".
//
// The partition must encode back to exactly the certificate's extension,
// byte for byte: then the issuingDistributionPoint Build writes for it
// holds the very GeneralNames the certificate holds, which is what relying
// parties compare. Every error wraps ErrNoPartition.
func PartitionOf(cert *x509.Certificate) (Partition, error) {
	if cert == nil {
		return Partition{}, fmt.Errorf("%w: no certificate", ErrNoPartition)
	}
	var value []byte
	found := false
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidExtCRLDistributionPoints) {
			if found {
				return Partition{}, fmt.Errorf("%w: two cRLDistributionPoints extensions", ErrNoPartition)
			}
			value, found = ext.Value, true
		}
	}
	if !found {
		return Partition{}, fmt.Errorf("%w: no cRLDistributionPoints extension", ErrNoPartition)
	}
	uri, directoryName, err := x509enc.ParseCRLDistributionPoints(value)
	if err != nil {
		return Partition{}, fmt.Errorf("%w: cRLDistributionPoints: %v", ErrNoPartition, err)
	}
	name, err := x509enc.DNFromDER(directoryName)
	if err != nil {
		return Partition{}, fmt.Errorf("%w: directoryName: %v", ErrNoPartition, err)
	}
	p := Partition{Name: nameFromURL(uri), URL: uri, DistributionPoint: name}
	if p.Name == "" {
		return Partition{}, fmt.Errorf("%w: the URL does not end in /<partition>.crl", ErrNoPartition)
	}
	var errs []error
	p.validate("cRLDistributionPoints", func(field, format string, args ...any) {
		errs = append(errs, &FieldError{field, fmt.Sprintf(format, args...)})
	})
	if len(errs) > 0 {
		return Partition{}, fmt.Errorf("%w: %v", ErrNoPartition, errors.Join(errs...))
	}
	again, err := p.marshalCRLDistributionPoints()
	if err != nil || !bytes.Equal(again, value) {
		return Partition{}, fmt.Errorf("%w: cRLDistributionPoints is not encoded as this CA encodes partitions (one attribute per RDN, PrintableString or UTF8String), so a CRL could not repeat its names byte for byte", ErrNoPartition)
	}
	return p, nil
}
