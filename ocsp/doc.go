// Package ocsp is Shomei's OCSP responder (spec R-R6): RFC 6960 with the
// RFC 5019 profile, served over HTTP (Responder is an http.Handler), with one
// delegated responder certificate per issuer key generation.
//
// It owns parsing requests (ParseRequest, fuzzed: requests are untrusted),
// making and signing responses, the response cache, and the delegated
// responder certificate's profile (NewResponderCertificate). It does not own
// certificate status: a Source answers it (the CA store, wired in cmd/), and
// whoever changes a status calls Invalidate.
//
// # Invariants
//
//   - A successful response is a BasicOCSPResponse signed by the delegated
//     responder of the issuer key generation the CertID names (matched by
//     issuerNameHash and issuerKeyHash, SHA-1 or SHA-256), ResponderID byKey,
//     that one certificate in certs, the request's CertID echoed byte for
//     byte. It is never signed by a responder certificate outside its
//     validity, and its nextUpdate never passes the responder's notAfter.
//   - Revoked responses carry revocationTime (when the CA recorded it) and
//     the reason code, and the event's effective time as the invalidityDate
//     singleExtension (R-R3; RFC 6960 §4.4.5 admits RFC 5280's CRL entry
//     extensions there). Reason 0 (unspecified) is left out (RFC 5280
//     §5.3.1).
//   - After Invalidate(serial) returns, no request is answered from a
//     response made before it: the cached responses and any response being
//     made are dropped, and a response made from a status read before the
//     call is served only to the requests already waiting for it. R-R4's
//     1 s therefore holds if the wiring calls Invalidate within 1 s of the
//     store's status change (the store's change log, ca/store Changes, is
//     the natural feed; the wiring measures the delay). A pre-signed
//     response never outlives the status it gives: the store drops it in
//     the transaction that changes the status and refuses one signed from
//     a status read before (ResponseStore, PresignStore).
//   - A pre-signed response is served only while it is one a request would
//     get: for the exact CertID it was signed for, by the issuer's current
//     responder key, less than half its validity old, and sent with a
//     certificate of that key valid now and over the whole response.
//   - Only cacheable responses are sent with HTTP caching headers — one
//     CertID, no nonce, status good or revoked. The response cache also
//     keeps one-CertID "unknown" answers, for UnknownReuse (default 1 min)
//     only and sent with Cache-Control: no-cache, because "unknown" turns
//     into "good" at issuance and issuance does not invalidate.
//   - No caller can make the responder sign without limit (issue #9 item
//     5). A signature the cache shares — one per issued certificate,
//     CertID hash and half validity — is bounded by the certificates
//     issued. Every other one is fresh: a nonce, several CertIDs, an
//     unknown serial not in the cache; fresh signatures come out of a
//     token bucket (SignatureBudget a second, SignatureBurst at once).
//     Over it a one-CertID nonce request is answered with the shared,
//     cached response without its nonce (RFC 5019 §4 and RFC 8954 let a
//     responder leave the nonce out; clients that insist on it retry),
//     and anything else gets tryLater (3), unsigned, with HTTP
//     Retry-After — never internalError. malformedRequest and
//     unauthorized are unsigned (RFC 6960 §4.2.1) and cost no signature.
//   - Any Source failure, or a Status no response can be made from (no
//     status, revoked without a time, a reason a CRL entry may not carry:
//     6, 7, 8 or 10, x509enc.CheckReason; a ThisUpdate more than half the
//     validity old), is internalError; it is logged, never answered as
//     good.
//
// # HTTP
//
// POST to Config.Path ("/ocsp") with the DER request as body, or GET
// Path/{URL-encoded base64 of the DER request} (RFC 6960 Appendix A; RFC
// 5019 §5; unpadded and URL-alphabet base64 are accepted too). OCSP errors
// are HTTP 200 with an unsigned OCSPResponse: malformedRequest (1) for
// anything unparseable, bad base64, an unsupported CertID hash, more than
// 16 CertIDs or more than 16 KiB; unauthorized (6) for an issuer not
// served; tryLater (3) over the signature budget (with Retry-After);
// internalError (2) as above. Wrong path: 404; wrong method: 405.
//
// A cacheable response is sent with Cache-Control "max-age=<seconds until
// nextUpdate, capped by Config.MaxAge — or, for an all-good response, by
// Config.GoodMaxAge when set>, public, no-transform, must-revalidate", Last-Modified (thisUpdate), Expires (nextUpdate) and an
// ETag (a hash of the response); a GET with a matching If-None-Match gets
// 304. If-Modified-Since is not honoured: thisUpdate has one-second
// resolution, and a status that changes within the second would be
// reported unmodified.
//
// Mount the Responder so that GET paths reach it unaltered: http.ServeMux
// cleans paths and redirects "//" — which base64 can contain — so route the
// Path prefix to the Responder before any ServeMux.
//
// # Decisions
//
//   - Several CertIDs (RFC 5019 §2.1.1 says one; RFC 6960 allows more):
//     answered, up to 16, one SingleResponse each, if all name the same
//     issuer key generation — a response has one signer and a delegated
//     responder speaks only for its issuer — else unauthorized. They are
//     not cached.
//   - Signed requests: accepted; the optionalSignature's structure is
//     checked and the signature ignored (RFC 5019 §2.1.2 lets responders
//     ignore it). requestorName is ignored.
//   - Extensions: the nonce (RFC 8954) is echoed when it is a DER OCTET
//     STRING of 1 to 32 octets; other lengths, or a bare value, are
//     malformedRequest. Unknown non-critical extensions are ignored,
//     unknown critical ones are malformedRequest.
//   - Validity (nextUpdate − thisUpdate) defaults to 1 h. thisUpdate is the
//     Source's ThisUpdate, or now (whole seconds) when the Source reads the
//     live store; producedAt is now. A cached response is served for half
//     its validity, so every response sent has at least 30 min left, and a
//     hot certificate is signed for at most twice an hour per CertID hash.
//     HTTP caches and clients may keep a response until nextUpdate, so a
//     client that caches sees a revocation up to Validity late (see R-R4).
//   - Cache: CacheSize (default 262,144) responses, sharded by serial,
//     CLOCK eviction (an approximation of LRU whose hits only set a bit
//     under a read lock). Concurrent requests for one uncached response
//     make one signature. The responder certificate is shared, not stored
//     per entry: an entry takes about 670 bytes of heap with a P-256
//     responder (BenchmarkCacheMemory), about 180 more with RSA-2048 and
//     300 more with RSA-3072 (longer signatures): the default costs
//     roughly 175–260 MB. Each (issuer, CertID hash, serial) is one entry.
//   - Responder keys: RSA ≥ 2048 (sha256WithRSAEncryption) or ECDSA P-256
//     or P-384 (ECDSA with SHA-256 or -384): R-P1's algorithms, from
//     internal/x509enc like the issuers'. P-521 is refused. A Signer with
//     SignContext(ctx, digest, opts), like hsm.Signer, gets the request's
//     deadline (Config.Timeout, default 5 s, bounds Source and signature).
//
// # Pre-signed responses
//
// A Presigner keeps a signed response ready for every live certificate
// (issue 12), in a store (Config.Presigned: the CA's, ca.OCSPResponses; a
// replica's own, ocsp/replica), so that a request costs no signature even
// for a certificate nobody asked about lately, and a restart signs nothing
// again. The store queues the work: a status change (issuance,
// revocation) drops the certificate's response and queues it at once, in
// its own transaction; a stored response queues its refresh at
// RefreshAfter (default 3/8 of the validity: it is served until half its
// validity, so an eighth is left for a backlog); a backfill walk queues
// certificates older than pre-signing. The Presigner takes what is due,
// status changes first, signs within its own token bucket
// (PresignConfig.Budget a second, Burst at once; apart from
// SignatureBudget) with Workers signatures at once, and stores each
// response, unless the status changed meanwhile. Expired certificates
// leave the queue and the store. Its work is spread by the bucket: a
// backlog (a first start over a full store, a long outage) is worked
// off at Budget a second, oldest first, and the refreshes then come due
// as spread as the signatures were.
//
// Decisions:
//
//   - One CertID form is pre-signed: SHA-1 with NULL parameters, what
//     `openssl ocsp`, Go's x/crypto/ocsp and RFC 5019 §2.1.1 clients
//     send. A SHA-256 CertID is signed on demand and cached as before:
//     pre-signing it too would double the signatures and the disk for a
//     form few relying parties send.
//   - A request is answered from the store when it misses the cache; the
//     response then enters the cache like a signed one. Only the store is
//     read per request: the cache (CacheSize) is all the memory responses
//     take, whatever the number of certificates.
//   - The store keeps the signed part of the BasicOCSPResponse and the
//     responder key (the responder generation), not the responder
//     certificate: the response is completed with a certificate of that
//     key valid from its thisUpdate to its nextUpdate — the current one,
//     an earlier one kept across SetIssuers (a renewal), or another CA
//     process's certificate of the same HSM key. A new responder key
//     (after a revocation) makes the old responses unusable: they are
//     signed again as requests or refreshes come.
//   - A CA pre-signs while it leads (cmd/shomei-ca): several processes on
//     one PostgreSQL store serve what the leader stored.
//   - Metrics: shomei_ocsp_presign_signatures_total,
//     shomei_ocsp_presigned_total (stored), shomei_ocsp_presign_discarded_total,
//     shomei_ocsp_presign_failures_total, shomei_ocsp_presign_backlog (due
//     now, counted up to 100,000), shomei_ocsp_presign_oldest_age_seconds,
//     shomei_ocsp_presign_signatures_per_second and
//     shomei_ocsp_presign_signing_duration_seconds; the responder counts
//     shomei_ocsp_presigned_hits_total. shomei_ocsp_signing_duration_seconds
//     counts the signatures made for requests only.
//
// # Unknown serials
//
// A serial the issuer never issued is answered "unknown" (RFC 6960 §2.2:
// the responder does not know about the certificate), not "revoked" with
// the extended revoked definition (§2.2, §4.4.8): a revoked answer for a
// non-issued serial would be an assertion the CA makes about a certificate
// that does not exist, and R-R6 lists unknown among the statuses. An
// unknown answer names its CertID, serial included, so it cannot be
// pre-signed once per issuer: it is signed once per (issuer, CertID hash,
// serial), within the signature budget, and cached for UnknownReuse.
//
// # Access
//
// Who may ask (R-R6, registered relying parties) is decided in front of
// the responder by package relyingparty, whose refusal is Unauthorized():
// the unsigned unauthorized response (6). Route mounts the responder behind
// such a gate.
//
// # Issuer key generations
//
// SetIssuers replaces the set answered for, whole and atomically, on a
// running Responder: a renewed responder certificate (R-R6;
// shomei_ocsp_responder_not_after_timestamp_seconds tells when), a new
// issuer key generation after a rotation, a generation removed once it
// signs nothing (R-K1). A request answers with the set it started with.
// Each issuer key keeps one number in the cache's keys for the
// Responder's life, so its cached responses survive renewals and
// Invalidate reaches every generation ever served.
//
// # Metrics
//
// With Config.Metrics: shomei_ocsp_responses_total{status} (good, revoked,
// unknown per certificate answered; malformedRequest, unauthorized,
// tryLater, internalError), shomei_ocsp_cache_hits_total, shomei_ocsp_cache_misses_total,
// shomei_ocsp_presigned_hits_total,
// shomei_ocsp_signature_budget_exceeded_total{answer} (withoutNonce, tryLater),
// shomei_ocsp_cache_entries, shomei_ocsp_signing_duration_seconds and
// shomei_ocsp_responder_not_after_timestamp_seconds{issuer}. Labels carry
// no serials and no personal data (R-P4); logs name certificates by serial.
package ocsp
