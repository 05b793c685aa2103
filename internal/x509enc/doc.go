// Package x509enc is Shomei's one home for the DER of RFC 5280 (X.509
// certificates and CRLs) and RFC 6960 (OCSP) that more than one package
// writes or reads. ca/profile, ca/issuer, ca, crl and ocsp all use it; it
// imports nothing of Shomei, so crl and ocsp need no ca/... package.
//
// It holds, each exactly once:
//
//   - the signature algorithms (algorithm.go): x509.SignatureAlgorithm ↔
//     DER AlgorithmIdentifier (RFC 5280 §4.1.1.2; NULL parameters for RSA
//     PKCS #1 v1.5, RFC 4055 §5; none for ECDSA, RFC 5758 §3.2), hash,
//     verification, signature size, and the choice of R-P1 for an issuer
//     or responder key: RSA → sha256WithRSAEncryption, P-256 →
//     ecdsa-with-SHA256, P-384 → ecdsa-with-SHA384. Anything else (P-521,
//     Ed25519, an unknown algorithm) is refused, never mapped to a default;
//   - distinguished names (name.go): the DN type, one attribute per RDN in
//     the written order, its one attribute-type table (RFC 4519) and its
//     encoder (RFC 5280 §4.1.2.4: PrintableString when every character
//     allows it, UTF8String otherwise);
//   - Time (time.go): UTCTime for 1950 to 2049, GeneralizedTime otherwise
//     (RFC 5280 §4.1.2.5, §5.1.2.4-6), written and read;
//   - key identifiers (keyid.go): subjectKeyIdentifier method (1) of RFC
//     5280 §4.2.1.2 and the authorityKeyIdentifier of §4.2.1.1;
//   - the CRL distribution point (distpoint.go): cRLDistributionPoints
//     (§4.2.1.13) and issuingDistributionPoint (§5.2.5) naming a partition
//     by a URI then a directoryName, one encoder and one parser (R-R5);
//   - signature splicing (signed.go): SEQUENCE { tbs, signatureAlgorithm,
//     signatureValue BIT STRING } around bytes signed elsewhere (an HSM),
//     as Certificate (§4.1), CertificateList (§5.1) and BasicOCSPResponse
//     (RFC 6960 §4.2.1) are built;
//   - CRLReason codes (reason.go): the table of RFC 5280 §5.3.1 and the one
//     rule of which reasons a CRL entry or an OCSP revoked response
//     (RFC 6960 §4.2.1) may carry;
//   - DER lengths (der.go).
//
// The encoders append into a caller's buffer where a caller is a hot path
// (a CRL of a million entries), and allocate nothing per element.
package x509enc
