package crl

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
)

// BuildReference is Build as it was before it encoded the CRL itself: the
// request's plan handed to x509.CreateRevocationList, which encodes with
// encoding/asn1. TestBuildMatchesReference holds Build's encoder to its
// bytes. (Exported for the package's external tests; it is in a _test.go
// file, so it is not part of the package.)
func BuildReference(req Request) ([]byte, error) {
	pl, err := prepare(req, true)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.RevocationList{
		SignatureAlgorithm:        pl.sigAlg,
		Number:                    req.Number,
		ThisUpdate:                pl.thisUpdate,
		NextUpdate:                pl.nextUpdate,
		RevokedCertificateEntries: referenceEntries(req.Entries, pl.sorted),
		ExtraExtensions:           []pkix.Extension{{Id: oidExtIssuingDistributionPoint, Critical: true, Value: pl.idp}},
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, req.Issuer, req.Signer)
	if err != nil {
		return nil, fmt.Errorf("crl: partition %s: %w", req.Partition.Name, err)
	}
	return der, nil
}

// referenceEntries converts entries, in sorted order, to x509's.
// x509.CreateRevocationList writes the reasonCode itself from ReasonCode,
// omitting it for 0, and appends it after ExtraExtensions, so an entry's
// extensions are invalidityDate then reasonCode (Go 1.26
// crypto/x509.CreateRevocationList).
func referenceEntries(entries []Entry, sorted []sortKey) []x509.RevocationListEntry {
	out := make([]x509.RevocationListEntry, len(sorted))
	for i, k := range sorted {
		e := &entries[k.index]
		out[i] = x509.RevocationListEntry{SerialNumber: e.Serial, RevocationTime: seconds(e.RevokedAt), ReasonCode: e.Reason}
		if !e.InvalidityDate.IsZero() {
			// The DER GeneralizedTime, formatted by the time package.
			value := append([]byte{0x18, 15}, seconds(e.InvalidityDate).UTC().Format("20060102150405Z")...)
			out[i].ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 24}, Value: value}}
		}
	}
	return out
}
