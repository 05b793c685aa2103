-- Shomei store, PostgreSQL schema version 2: the pre-signed OCSP responses
-- (issue 12) and their queue, two buckets of package store
-- (ca/store/schema.go, presigned.go).
CREATE TABLE kv_ocsp_responses (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_ocsp_queue     (k bytea PRIMARY KEY, v bytea NOT NULL);
