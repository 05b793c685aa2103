// Package repository is what a relying party finds on the CA's HTTP
// listener without asking for anyone's status: the public repository that
// J-LIS keeps for the real system (R-K1: the issuer certificates of every
// generation and their link certificates; R-R5: the CRL of every
// partition; R-R6: the OCSP URL; the CPS).
//
// It owns:
//
//   - Issuers: the issuer and link certificates, served at
//     /issuers/<name>.pem and .cer (names from issuer.Published) with the
//     bundle of trust anchors issuers.pem, replaced as a whole when the
//     generations change (a request sees the old or the new set);
//   - Page: the page at / (HTML, server-rendered by html/template from an
//     embedded template, no JavaScript), the same facts as JSON at
//     /index.json (schema SchemaVersion, see Index), and the listings of
//     /issuers/ and /crl/.
//
// # Invariants
//
//   - Every response is built from memory: the issuer snapshot Issuers
//     holds and a snapshot of the CRLs the publisher serves
//     (crl.Publisher.Published), taken at most once per Config.Refresh;
//     each page is rendered once per snapshot of the CRLs and of the
//     issuers and then served from that cache (at most 32 MiB kept, more
//     than every page at national scale; past it the cache stores no
//     more but evicts nothing, so walking the pages cannot push out page
//     1). A flood of requests never reads the store or signs anything.
//   - Every response is bounded: the CRLs (profile × generation × ~1,741
//     municipalities × shards at national scale) are shown Config.PageSize
//     at a time, ?page=N (1-based); a page that is not a whole number from
//     1 to the last page is refused with 400 naming the range. The issuer
//     generations are few (one per rotation, each approved by two
//     operators) and shown whole.
//   - HTML is escaped by html/template; every HTML response carries a
//     Content-Security-Policy that allows nothing but the page's own style
//     sheet (default-src 'none'), and X-Content-Type-Options: nosniff.
//   - Nothing personal (R-P4): the page shows issuer certificates, CRL
//     partitions (named by municipality code) and URLs, never a
//     subscriber certificate.
//   - Links in the HTML are paths on the listener that serves the page, so
//     they resolve whatever address it is reached by; the URLs written in
//     certificates (server.public_url) are shown as text, and are what the
//     JSON gives.
package repository
