-- Shomei store, PostgreSQL schema version 1: one table per bucket of
-- package store (ca/store/schema.go says what each holds). Keys are the
-- store's byte keys, compared byte by byte as bbolt does; values are the
-- store's protobuf records (api/shomei/store/v1), deterministic encoding.
CREATE TABLE kv_meta                   (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_issuers                (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_audit                  (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_certs                  (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_holders                (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_keys                   (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_blocked                (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_inquiries              (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_events                 (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_changes                (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_partitions             (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_crl_entries            (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_crls                   (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_responder_certs        (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_responder_revoked_keys (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_audit_checkpoints      (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_proposals              (k bytea PRIMARY KEY, v bytea NOT NULL);
