package x509enc

import "encoding/asn1"

// Extension OIDs that certificates, CRLs and OCSP responses share (RFC
// 5280 §4.2.1, §5.2, §5.3; RFC 6960 §4.4.5 admits the CRL entry
// extensions in a SingleResponse).
var (
	OIDExtAuthorityKeyID           = asn1.ObjectIdentifier{2, 5, 29, 35}
	OIDExtCRLDistributionPoints    = asn1.ObjectIdentifier{2, 5, 29, 31}
	OIDExtIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
	OIDExtInvalidityDate           = asn1.ObjectIdentifier{2, 5, 29, 24}
)
