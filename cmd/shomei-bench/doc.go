// Command shomei-bench measures Shomei against peers on this machine and
// prints the results as Markdown tables (docs/benchmarks.md keeps them).
//
// shomei-bench ocsp (`make bench-ocsp`) measures OCSP responses/s in one
// run, side by side, from one load generator:
//
//   - shomei: ocsp.Responder (the package cmd/shomei-ca serves), cache on,
//     its delegated responder key in a throwaway SoftHSM2 token, statuses
//     read from a bbolt file of N certificates (default 100,000, 10 %
//     revoked);
//   - peer: `openssl ocsp` serving the same N certificates from an OpenSSL
//     CA database (index.txt), forked into one process per CPU (-multi);
//     it signs every response with a software RSA-2048 key of its own;
//   - ceiling: a bare net/http handler that answers every POST with one
//     fixed response Shomei signed beforehand.
//
// Cached: requests (SHA-1 CertIDs, no nonce) for a hot set of serials whose
// responses were put in Shomei's cache first, at concurrency 1, 8 and 64.
// Uncached: requests with a nonce, which Shomei signs every time, next to
// the raw RSA-2048 signing rate of the same token through hsm.Signer.
//
// shomei-bench hostile (`make bench-hostile`, issue 9) starts a real
// shomei-ca and runs a mixed hostile load against it (garbage, oversized
// and nonce OCSP requests, unauthenticated 4 MiB gRPC messages, slow
// bodies, 20,000 idle connections held by hostile-hold child processes)
// while one good client issues and queries OCSP; it fails if the good
// client saw a failure or the CA's peak RSS passed its bound.
//
// shomei-bench presign (`make bench-presign`, issue 12) writes N
// certificate records (10 % revoked) straight into a new CA store (bbolt,
// ca/store), starts Shomei's responder and pre-signer over it in a child
// process (presign-serve; responder key in a throwaway SoftHSM2 token),
// times the pre-signing of every response (HSM signatures, CPU, memory,
// the store's pages per million responses), then measures POSTed queries
// spread uniformly over all N against a hot set of 10,000 serials, with
// the signatures the responder made during each cell (target during the
// uniform cells: none) and the uniform rate as a share of the hot one
// (target: at least 80 %).
//
// shomei-bench scale (`make bench-scale`, issue 12) starts a real shomei-ca
// on bbolt and on a throwaway PostgreSQL cluster and, for each preload size
// (synthetic issued certificates written through store.Reserve and
// store.Complete with their audit records, ca.IssuanceRecord), measures the
// CA's start-up, its issuance rate over gRPC, its CPU per certificate
// (/proc) beside one HSM signature's (a child process signing on the same
// token), the store on disk, and address-change events under issuance
// load until OCSP answers revoked and the CRL lists them.
//
// # Invariants
//
//   - openssl ocsp listens on every interface (OpenSSL 3.0's -port takes a
//     port number, not an address), so the command runs in a network
//     namespace of its own that has only loopback: it re-executes itself
//     under `unshare -n` unless it is already in one, and brings lo up with
//     `ip link set lo up`. Every server listens on 127.0.0.1 in it. The
//     tests do the same (TestMain).
//   - The peer and Shomei's Source know the same statuses: both are written
//     from one dataset, and TestOpenSSLIndex asks openssl and the Source for
//     the same serials.
//   - A response counts only if it is a successful OCSP response (every
//     response is checked structurally; every Nth, and the first of each
//     worker, is parsed and verified with x/crypto/ocsp against the issuer,
//     its serial and status compared with the dataset). Failures are
//     counted and shown, never counted as served.
//   - The servers run in child processes (Shomei and the ceiling in one
//     shomei-bench process, the peer in openssl's), the load generator in
//     this one; all of them share the machine's CPUs, which the output
//     says.
package main
