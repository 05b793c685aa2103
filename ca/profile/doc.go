// Package profile owns the two end-entity certificate profiles of spec §1,
// SIGN (署名用電子証明書, R-P2) and AUTH (利用者証明用電子証明書, R-P3): the
// TBSCertificate the CA has the HSM sign (NewDraft), the equivalent
// certificate template for x509.CreateCertificate (Template), the exact
// profile check it runs on every certificate (Check), and zlint's RFC 5280
// lints (Lint).
//
// # The issuance cycle
//
// The CA lints before the HSM signs (Boulder's linter idea), and lints the
// very bytes the HSM will sign:
//
//	d, err := profile.NewDraft(issuer, cfg, req) // validates, encodes d.TBS
//	der, err := d.LintCopy()                     // d.TBS + placeholder signature
//	cert, err := x509.ParseCertificate(der)
//	err = d.Check(cert)                          // = profile.Check(cert, issuer, cfg, req)
//	_, err = profile.Lint(der)
//	// then the HSM signs d.TBS, and the certificate is d.TBS, the issuer's
//	// signature algorithm and that signature.
//
// NewDraft encodes the TBSCertificate directly, byte for byte what
// x509.CreateCertificate makes of Template's template when it signs with
// the issuer's key (the tests compare the two for thousands of generated
// holders), without making a signature with a throwaway key and verifying
// it, which cost more than everything else the lint pass does. The lint
// copy differs from the signed certificate only in the signature value: Go's
// parser, Check and zlint do not verify the signature of a certificate that
// is not self-issued (zcrypto tries only when subject and issuer are the
// same name, never so here), and the tests show every zlint result to be
// the same for the lint copy and the signed certificate. The caller
// verifies the real signature (the CA's HSM signer verifies each one).
//
// The signature algorithm follows the issuer's key (R-P1): sha256WithRSA for
// RSA, ECDSA-SHA256 for P-256, ECDSA-SHA384 for P-384. It is inferred from
// issuer.PublicKey, not configured (x509enc.ForPublicKey,
// SignatureAlgorithmIdentifier). Template's users that sign a lint copy
// with a throwaway key must use a key of the issuer key's type.
//
// # Invariants
//
//   - Exactly R-P1's extensions, in R-P1's order, with R-P1's criticality:
//     authorityKeyIdentifier, keyUsage (critical), subjectAltName and
//     issuerAltName (SIGN only), cRLDistributionPoints, certificatePolicies
//     (critical), subjectKeyIdentifier, authorityInfoAccess (when an OCSP
//     URL is configured). No basicConstraints, no extendedKeyUsage.
//     x509.CreateCertificate builds extensions from template fields
//     (KeyUsage, SubjectKeyId, …) and appends ExtraExtensions after them,
//     skipping each one it would build whose OID is in ExtraExtensions. It
//     also adds an authorityKeyIdentifier from parent.SubjectKeyId on its own
//     (unless self-signed) and a subjectKeyIdentifier for CA templates
//     (Go 1.26 crypto/x509: CreateCertificate, buildCertExtensions). So
//     Template puts every extension into ExtraExtensions, in order, and
//     leaves all those fields empty; Check proves the result.
//   - Names are encoded with internal/x509enc (x509enc.DN), one attribute per RDN: pkix.Name would
//     put the SIGN subject's two L values into one multi-valued RDN.
//   - AUTH certificates carry nothing about the person (R-P3): subject
//     C and CN only, no subjectAltName, no issuerAltName.
//   - The subjectKeyIdentifier is RFC 5280 §4.2.1.2 method 1 (SHA-1 of the
//     subjectPublicKey bits), not Go's default for CA certificates (SHA-256
//     truncated, RFC 7093).
//   - Error messages name fields and rules, never personal values (R-P4):
//     Template refuses a bad request with *FieldError values wrapping
//     ErrInvalidRequest (InvalidArgument), Check reports each difference as
//     a *MismatchError wrapping ErrMismatch, Lint wraps ErrLint. Both of the
//     last two are internal errors of the CA, never the requester's fault.
//
// # Decisions where the spec is silent
//
//   - cRLDistributionPoints: one DistributionPoint whose fullName holds the
//     HTTP URI first and then the R-R5 directoryName. Go's x509 parser stops
//     reading a fullName at its first non-URI name, so the other order hides
//     the URL from every Go relying party (cert.CRLDistributionPoints is
//     empty); RFC 5280 gives the order no meaning.
//   - The request's own rules: serial numbers of 64 to 159 bits (the caller
//     sets a fixed top bit, as ca/issuer does, so that 64 random bits always
//     show); notBefore and notAfter in whole seconds, notAfter at 23:59:59
//     JST; holder keys RSA ≥ 2048 bits with e = 65537 or ECDSA P-256 (whether
//     P-256 is enabled is the CSR policy's call); the CN and the romanised
//     prefecture and municipality in PrintableString characters, at most 64;
//     the name with a U+3000 between a non-empty surname and given name; the
//     date of birth a real date, not after the issuance date, whose era digit
//     is the era of that date (the boundaries of ca/validity); the address
//     and name free of control characters. Which characters (JIS X 0208/0212,
//     R-P5) is checked before, by the caller.
//   - URLs: the CRL URL must be http (R-R5); the OCSP and CPS URLs http or
//     https.
//
// # zlint
//
// Lint runs the 115 certificate lints of zlint v3 whose source is RFC 5280;
// none is excluded, and both profiles pass them all without warnings. The
// set is found once; each call parses the certificate with zcrypto and runs
// every lint of the set as zlint.LintCertificateEx would. The
// other sources are for the web PKI and flag what this profile does on
// purpose: two L attributes (community e_duplicate_subject_attribs),
// otherName subjectAltNames (CABF e_ext_san_other_name_present), no EKU,
// critical certificatePolicies, five-year validity. zlint is v3.7.1:
// v3.7.2 and later need a publicsuffix-go version the module proxy does not
// serve.
package profile
