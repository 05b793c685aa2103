package x509enc

import "errors"

// CRLReason codes, RFC 5280 §5.3.1 (7 is not assigned). RFC 6960 §4.2.1
// uses the same codes for an OCSP revoked response's revocationReason.
const (
	ReasonUnspecified          = 0
	ReasonKeyCompromise        = 1
	ReasonCACompromise         = 2
	ReasonAffiliationChanged   = 3
	ReasonSuperseded           = 4
	ReasonCessationOfOperation = 5
	ReasonCertificateHold      = 6
	ReasonRemoveFromCRL        = 8
	ReasonPrivilegeWithdrawn   = 9
	ReasonAACompromise         = 10
)

// reason is one CRLReason code: its name and, when a revocation may not
// carry it, why.
type reason struct {
	name    string
	refused string
}

// reasons is the one CRLReason table of Shomei (issue 10), and its one rule
// of which reasons a revocation may carry: the same on a CRL entry and in
// an OCSP revoked response, so that the two never tell a relying party
// different things. The CA writes 1 to 5 (R-R1); 0 and 9 are valid
// revocations it may read from elsewhere.
var reasons = [...]reason{
	ReasonUnspecified:          {name: "unspecified"},
	ReasonKeyCompromise:        {name: "keyCompromise"},
	ReasonCACompromise:         {name: "cACompromise"},
	ReasonAffiliationChanged:   {name: "affiliationChanged"},
	ReasonSuperseded:           {name: "superseded"},
	ReasonCessationOfOperation: {name: "cessationOfOperation"},
	ReasonCertificateHold:      {name: "certificateHold", refused: "certificateHold, but revocation is permanent (R-R2)"},
	7:                          {refused: "not a CRLReason of RFC 5280 §5.3.1"},
	ReasonRemoveFromCRL:        {name: "removeFromCRL", refused: "removeFromCRL belongs to delta CRLs"},
	ReasonPrivilegeWithdrawn:   {name: "privilegeWithdrawn"},
	ReasonAACompromise:         {name: "aACompromise", refused: "aACompromise concerns attribute certificates"},
}

// ReasonName is the RFC 5280 name of a CRLReason code, or "" for a number
// that is none.
func ReasonName(code int) string {
	if code < 0 || code >= len(reasons) {
		return ""
	}
	return reasons[code].name
}

// CheckReason returns nil when a revocation may carry reason code, on a
// CRL entry or in an OCSP response, and otherwise an error saying why not:
// 6 certificateHold (revocation is permanent, R-R2), 8 removeFromCRL (for
// delta CRLs; Shomei publishes full CRLs only), 10 aACompromise (attribute
// certificates; Shomei's are public-key certificates) and any number that
// is not a CRLReason.
func CheckReason(code int) error {
	if code < 0 || code >= len(reasons) {
		return errors.New(reasons[7].refused)
	}
	if why := reasons[code].refused; why != "" {
		return errors.New(why)
	}
	return nil
}
