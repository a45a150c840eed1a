//go:build cgo && consign_stdlib

package sqlite

// registerWALBuffer is nil in builds tagged consign_stdlib: the C engine opens the
// store's files through SQLite's default VFS, without the gathered writes of walbuf.c.
var registerWALBuffer func() (string, error)
