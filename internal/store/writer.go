package store

// SharedWriter is implemented by drivers with a single writer that ingest's durable
// commits and the dispatcher's claims and records take turns at (SQLite). A commit holds
// the writer for time that grows with its events, and every claim or record arriving
// meanwhile waits for all of it; ingest keeps its commits smaller while that happens, so
// that a backlog in the store drains while events keep coming. PostgreSQL runs
// transactions side by side and does not implement it.
type SharedWriter interface {
	// WriterShared reports whether a claim, record or other bookkeeping transaction
	// asked for the writer lately (SQLite: within the last second): the dispatcher is
	// writing, and each of its transactions waits for the commit before it.
	WriterShared() bool
}
