// Package engine is what package store keeps its records in: named buckets
// of byte keys in byte order, read in transactions that each see one
// snapshot and written in transactions that run one at a time — across
// every process that shares the engine — and either commit whole or leave
// nothing. Package store writes every rule of the CA's state once, over
// this contract; each engine only stores bytes:
//
//   - bbolt (OpenBolt): one file, one process. bbolt's own transactions
//     already are the contract.
//   - PostgreSQL (OpenPostgres, through pgx): one table per bucket
//     (migrations/, versioned and applied at open, no ORM), shared by any
//     number of CA processes. A write transaction first takes one
//     transaction-scoped advisory lock, so writers of every process run
//     one at a time exactly as bbolt's do, and reads in it see every
//     earlier commit; a read transaction is REPEATABLE READ, one snapshot.
//     Writes are kept in the transaction's memory and sent in one round
//     trip before a cursor reads the bucket and at commit.
//
// Errors: bbolt's Get cannot fail. PostgreSQL's can; a read that fails
// returns nothing and the error sticks to the transaction, so View and
// Update return it even when the function ignored the missing value, and
// Update then rolls back. A function can never commit on a failed read.
//
// Leases (Lead) elect one process for singleton work, such as publishing
// CRLs: with bbolt the only process always leads; with PostgreSQL the
// leader holds a session advisory lock on a connection of its own, which
// the server releases when the process or its connection dies.
package engine
