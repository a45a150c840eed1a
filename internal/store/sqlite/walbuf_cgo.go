//go:build cgo && !consign_stdlib

package sqlite

// int walbuf_register(const char *name);
// unsigned long long walbuf_gathered_writes(void);
// unsigned long long walbuf_subjournal_files(void);
import "C"

import (
	"fmt"
	"sync"
)

// walBufferVFS names the VFS of walbuf.c: SQLite's default one, with the log's writes
// gathered into large writes and statement journals kept in memory. The C engine opens the store's files through it.
const walBufferVFS = "consign-walbuf"

// registerWALBuffer registers the VFS, once, and returns its name.
var registerWALBuffer = sync.OnceValues(func() (string, error) {
	name := C.CString(walBufferVFS) // SQLite keeps the name: never freed
	if rc := C.walbuf_register(name); rc != 0 {
		return "", fmt.Errorf("register the %s SQLite VFS: error %d", walBufferVFS, int(rc))
	}
	return walBufferVFS, nil
})

// walBufferGathered reports how many log writes went into a buffer so far (tests).
func walBufferGathered() uint64 { return uint64(C.walbuf_gathered_writes()) }

// walBufferSubjournals reports how many statement journals were opened as files so far
// (tests).
func walBufferSubjournals() uint64 { return uint64(C.walbuf_subjournal_files()) }
