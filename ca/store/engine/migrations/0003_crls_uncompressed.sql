-- CRLs are stored uncompressed (issue 12, CRL shards). A shard's CRL is
-- up to about 7 MB (100,000 entries, certificates.crl_shard_size) and is
-- written again after every revocation in it; compressing the TOASTed
-- value (pglz) made that write several times slower than building and
-- signing the CRL. EXTERNAL keeps the value out of line, uncompressed,
-- for rows written from now on.
ALTER TABLE kv_crls ALTER COLUMN v SET STORAGE EXTERNAL;
