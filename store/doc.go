// Package store is Chancery's one database: SQLite (pure Go, WAL) as the embedded
// default and PostgreSQL at scale, behind database/sql so that each capability writes
// its queries once. Capabilities own their tables: each registers its own versioned
// migrations under its own name, and this package knows none of them.
//
// Queries use '?' placeholders; DB.Rebind turns them into PostgreSQL's $n form.
// Notify and Subscribe carry change events between replicas (PostgreSQL LISTEN/NOTIFY;
// in process for SQLite, which has one writer process by design).
package store
