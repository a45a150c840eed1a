//go:build cgo && linux

package bench

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static void consign_trim(void) { malloc_trim(0); }
#else
static void consign_trim(void) {}
#endif
*/
import "C"

// freeCMemory gives back to the system what glibc's allocator holds free: SQLite's page
// caches of earlier rounds' stores, freed when they closed but kept in its per-thread
// arenas, where they would count in this round's peak (three rounds of --repeat grew
// the backlog's peak 224 → 268 → 301 MB; with this 208 → 213 → 210 MB).
func freeCMemory() { C.consign_trim() }
