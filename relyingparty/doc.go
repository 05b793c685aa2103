// Package relyingparty decides who may ask an HTTP listener for certificate
// status — OCSP and CRLs — and how often (R-R6: in the real system only
// registered relying parties may check status, seed 002 §5; issue #9 items
// 5 and 6).
//
// A Gate wraps each status endpoint. It identifies the caller by a bearer
// token (Authorization: Bearer …, which `openssl ocsp -header` can send) or
// by the public key of a TLS client certificate, each pinned per relying
// party in the configuration. Then:
//
//   - a registered relying party is counted under its configured name and
//     limited by its own token bucket;
//   - anyone else is limited per address (IPv4 address, IPv6 /64; a
//     bounded table, least recently used evicted) and, in Registered mode,
//     refused: the endpoint's refusal (OCSP unauthorized, CRL HTTP 403) is
//     sent without any further work — no parsing, no store, no HSM;
//   - over a limit the answer is HTTP 429 with Retry-After.
//
// The address is the TCP peer's: X-Forwarded-For is not trusted. Behind a
// reverse proxy or CDN every caller has the proxy's address, so turn the
// per-address limit off (AddressRate < 0) and limit at the proxy.
//
// # Invariants
//
//   - Metric labels are the endpoint, the configured relying-party name
//     (or "anonymous", "unregistered") and the outcome: never an address,
//     a token or anything personal (R-P4). Logs name relying parties the
//     same way.
//   - A caller presenting both a token and a client certificate of two
//     different relying parties is refused, as is a token or certificate
//     no relying party has, in Registered mode.
//   - Tokens are compared as SHA-256 digests in constant time; the tokens
//     themselves are not kept.
//   - A client certificate identifies by its public key (SHA-256 of its
//     SubjectPublicKeyInfo): the TLS handshake proves the caller holds the
//     key, so the certificate needs no chain. The listener asks for a
//     client certificate without requiring one (tls.RequestClientCert;
//     see TLSConfig), so token callers and open mode keep working.
package relyingparty
