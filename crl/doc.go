// Package crl will publish partitioned certificate revocation lists (spec
// R-R5): one CRL per issuer key generation, municipality of issuance and
// shard, fixed at issuance and written into each certificate, with a
// critical issuingDistributionPoint, a monotonic CRL number, reason codes and
// invalidity dates, signed by the issuer key in the HSM.
//
// Not implemented yet: this is the place reserved for it in the repository
// layout (issue "Revocation pipeline").
package crl
