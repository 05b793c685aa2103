// Package crl builds and checks the certificate revocation list of one
// partition (spec R-R5): one CRL per issuer key generation, municipality
// of issuance and shard, fixed at issuance and written into each
// certificate's cRLDistributionPoints. Deciding when to regenerate, keeping
// the CRL number, dropping expired certificates and publishing are the
// caller's; this package turns one Request into one signed CRL (Build),
// proves a CRL is exactly that (Check), and reads the partition back from
// a certificate (PartitionOf).
//
// # Use
//
//	p, err := crl.PartitionOf(cert) // or from the store's crl_partition
//	der, err := crl.Build(crl.Request{Partition: p, Issuer: issuerCert, Signer: hsmKey,
//		Number: next, ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour), Entries: entries})
//	err = crl.Check(der, req) // before publishing: signature, names, entries
//
// # Invariants
//
//   - An X.509 v2 CRL signed by the issuer key with the algorithm of its
//     type, as certificates are (R-P1): sha256WithRSAEncryption for RSA,
//     ECDSA with SHA-256 for P-256 and SHA-384 for P-384. Build refuses a
//     Signer whose public key is not the issuer certificate's.
//   - The issuer name is the issuer certificate's RawSubject, byte for byte.
//   - Extensions, in this order: authorityKeyIdentifier (the issuer's
//     subjectKeyIdentifier, keyIdentifier only), cRLNumber, and a critical
//     issuingDistributionPoint. Nothing else.
//   - The issuingDistributionPoint's distributionPoint is a fullName of the
//     same GeneralNames, with the same bytes, as the certificates'
//     cRLDistributionPoints: the http URL, then the directoryName (URL
//     first because Go's x509 parser stops reading a fullName at the first
//     non-URI name; internal/x509enc encodes both). Relying parties such as OpenSSL use a
//     CRL with an issuingDistributionPoint only for certificates whose
//     cRLDistributionPoints share a name with it, so a difference makes
//     every certificate of the partition "unable to get certificate CRL".
//     PartitionOf refuses a certificate whose extension would not encode
//     back to the same bytes.
//   - Entries are sorted by ascending serial, each serial once. Each has
//     its revocationDate (when the CA recorded the revocation, R-R3), then
//     non-critical invalidityDate (the event's effective time, R-R3,
//     always a GeneralizedTime) when set, then non-critical reasonCode
//     unless the reason is 0. That order is x509.CreateRevocationList's
//     (it appends the reasonCode it synthesises after ExtraExtensions),
//     which Build used until it encoded CRLs itself: Build's TBSCertList
//     is byte for byte the one x509.CreateRevocationList writes for the
//     same request (TestBuildMatchesReference, against BuildReference in
//     reference_test.go).
//   - An empty partition gives a CRL with no revokedCertificates field at
//     all (RFC 5280 §5.1.2.6), not an empty one.
//   - Times are written to the second, rounded down: X.509 keeps whole
//     seconds and RFC 5280 forbids fractional seconds. thisUpdate,
//     nextUpdate and revocationDate are UTCTime through 2049 and
//     GeneralizedTime from 2050 (as encoding/asn1 writes them).
//
// # Decisions where the spec is silent
//
//   - Reason 0 (unspecified) is written as no reasonCode extension: RFC
//     5280 §5.3.1 says the extension SHOULD be absent rather than
//     unspecified, and x509.CreateRevocationList omits it for 0 anyway
//     (Go 1.26). Check therefore treats an explicit reasonCode 0 as a
//     difference. Accepted codes are 0-5 and 9; 6 certificateHold is
//     refused (revocation is permanent, R-R2), 8 removeFromCRL belongs to
//     delta CRLs (none are published), 10 aACompromise to attribute
//     certificates, 7 is unassigned: x509enc.CheckReason, the rule OCSP
//     applies too, so the two never disagree.
//   - onlyContainsUserCerts is TRUE: a partition is a municipality's SIGN
//     or AUTH holder certificates, all end-entity certificates. Issuer
//     certificates are self-signed and named in no partition (a compromised
//     issuer key revokes its holders' certificates with cACompromise,
//     R-R1), so no CA certificate is ever on these CRLs, and relying
//     parties will not apply one to a CA certificate. No onlySomeReasons,
//     no indirectCRL: every reason is on the one CRL, issued by the
//     certificates' own issuer.
//   - A partition's name is the last element of its URL without ".crl"
//     (ca/shard.go: <CRLBaseURL>/<partition>.crl), so a Partition whose
//     Name and URL disagree is refused, and PartitionOf derives the name
//     from the URL. Names are ASCII letters, digits, '-', '_' and '.'; URLs
//     are http (R-R5) without user, query or fragment. The CA names a
//     partition <sign|auth>-g<generation>-<municipality code> for shard 0,
//     the name every partition had before shards (so certificates issued
//     then keep their URL), and adds -s<n> for shard n ≥ 1:
//     sign-g1-13221, sign-g1-13221-s1, … This package needs no more of
//     the name than that it is one.
//   - Shards of one municipality differ in their directoryName too:
//     CN=<municipality> CRLDP for shard 0, CN=<municipality> CRLDP s<n>
//     from shard 1 on (profile.CRLDistributionPointName). A relying party
//     takes a CRL as covering a certificate when its issuingDistributionPoint
//     shares any one name with the certificate's cRLDistributionPoints
//     (RFC 5280 §6.3.3 b.2.i), so shards sharing the directoryName would
//     cover each other's certificates, and OpenSSL, preferring the newest
//     CRL that covers, would pass a certificate revoked on shard 1 with
//     shard 0's CRL (TestOpenSSLVerifyShards).
//   - An entry recorded after the CRL's thisUpdate is refused (zlint
//     e_crl_revocation_time_not_after_this_update): the caller takes
//     ThisUpdate after reading the entries. The invalidityDate is not
//     compared with either: it is the event's time as the municipality
//     reported it.
//   - Errors list every problem at once but at most ten of a kind, with a
//     count of the rest, so that a million-entry partition with one
//     systematic fault does not make a million-line error. Serial numbers
//     appear in messages: they are public on the CRL.
//
// # Cost
//
// A shard holds at most certificates.crl_shard_size certificates (100,000
// by default, a CRL of 7.3 MB; at most 1,000,000, 73 MB), and a partition
// from before shards may hold more, so Build and Check cost about what
// the CRL weighs, not a multiple of it:
//
//   - Build sorts fixed-width serial keys (skipping the sort when the
//     entries come in serial order, as the store gives them), works out
//     every length first, and writes the whole CertificateList into one
//     buffer of its final size: cryptobyte for the structure, each entry
//     appended from its key and times without a big.Int, a formatted
//     string or an allocation (encode.go). It hashes the TBSCertList,
//     gives the Signer the digest, verifies the signature with the
//     issuer's key and writes it after the TBSCertList in place.
//   - Check walks the DER with cryptobyte in place (once over the entries
//     in serial order, as Build writes them: their order and their
//     contents merged with the request) instead of
//     x509.ParseRevocationList, which makes a big.Int, a time.Time and
//     extension slices per entry. It verifies the signature over the
//     TBSCertList it read, hashing it again: nothing of Build's is reused.
//   - The Publisher reads a partition's entries from the store in place
//     (Source.PartitionRevocations: no record made per entry), sizes its
//     entries from the partition's last CRL, makes their serials from
//     chunks, validates them once (and seeks the entries with a problem
//     only when the request is refused), and builds Workers partitions
//     at once. A CRL's ETag is the SHA-256 of its signature, not of the
//     whole CRL.
//
// No single entry stops a partition: when Build refuses the request, the
// Publisher checks each entry as Build does (entryProblem) and leaves out
// one it cannot encode — a
// record from before the API bounded effective times, say — logging its
// serial and the problem (no personal data), counting it in
// shomei_crl_entries_skipped_total{partition} and reporting the partition
// degraded in Health; the rest of the partition is published. Health also
// fails, naming the partition, when a due partition stays unpublished for
// longer than StaleAfter (R-R4: 60 s) or its CRL runs past nextUpdate.
//
// Issuer key generations come and go while the Publisher runs (R-K1): a
// new generation's partitions appear in the store with its first
// certificate and are published like any other, signed by that
// generation's key (PublisherConfig.Issuers). A generation that signs
// nothing any more (retired or destroyed once its last certificate
// expired) is named to SetRetired: its partitions are skipped and dropped
// from Health, so neither its signer's refusal nor its last CRL running
// out makes the CA unready or fills the log.
//
// BenchmarkBuild and BenchmarkCheck measure 1,000 to 1,000,000 entries
// with a software RSA-2048 key; BenchmarkPartitionSet a 1,000,000-entry
// partition set signed in SoftHSM2 (10 × 100,000 and 1 × 1,000,000), and
// BenchmarkPublish the same through the Publisher. On a 2-core VM, a
// 1,000,000-entry partition in random serial order takes about 0.8 s to
// build (0.35 s of it sorting) and 0.9 s to check; Build holds about
// 100 MB of heap beyond its entries (the CRL and the sort keys), Check
// about 30 MB. x509.CreateRevocationList took 6 to 8 s and 1.5 GB for
// the same, and x509.ParseRevocationList 3 s and 0.8 GB.
//
// BenchmarkShardSet and BenchmarkShardRevocation (shards_bench_test.go)
// publish CRL shards through the whole path: a real store (bbolt, and
// PostgreSQL), the Publisher reading each shard's entries from it,
// building, signing in SoftHSM2, checking and saving. On the same 2-vCPU
// VM, shared with other work (load average 7 to 9, so wall times are up
// to twice the CPU time):
//
//   - a municipality's 1,000,000 revoked certificates in ten shards of
//     100,000 are rebuilt in 2.1 s on bbolt (1.6 s of CPU) and 3.5 s on
//     PostgreSQL (1.8 s of the CA process's CPU); the largest CRL is
//     7,300,751 bytes; peak heap 250 MB beyond the loaded entries;
//   - 150 shards, the 15,000,000 entries of a 200 M population, are
//     rebuilt in 33 s on bbolt (22.8 s of CPU, two workers); the
//     Publisher then holds their 1.1 GB of CRLs in memory to serve them;
//   - one revocation republishes its 100,000-entry shard alone in 130 to
//     250 ms on bbolt (102 to 118 ms of CPU) and 290 to 610 ms on
//     PostgreSQL (154 to 187 ms of CPU).
//
// Before the entries were read in place (and the rest of this section
// was done), the same took 2.7 s (2.3 s of CPU) and 7.0 s for the million,
// and 220 to 570 ms (171 to 187 ms of CPU) and 590 to 1,370 ms for one
// revocation.
package crl
