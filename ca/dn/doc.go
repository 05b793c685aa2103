// Package dn builds X.500 distinguished names attribute by attribute, in the
// order they are written.
//
// JPKI names repeat attribute types (two OUs in every issuer DN, two Ls in the
// signature certificate's subject), and each value must be a relative
// distinguished name of its own. crypto/x509/pkix.Name puts repeated values of
// a type into one multi-valued RDN and reorders types, so Shomei encodes names
// through this package instead and hands x509 the raw DER.
//
// The text form used in configuration is "TYPE=value" per RDN, most general
// first, exactly as the name is encoded and as `openssl x509 -text` prints it
// (C=JP, O=JPKI, OU=…): the opposite order of RFC 4514 strings.
package dn
