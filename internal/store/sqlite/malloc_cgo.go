//go:build cgo

package sqlite

// The C engine's memory comes from the C library's allocator. With glibc's defaults a
// free that leaves more than 128 KiB unused at the top of a heap gives it back to the
// kernel (madvise or brk), and the next statement faults the same pages in again. SQLite
// frees that much after every statement that builds a temporary table, such as the
// recorder's and the claim's `id IN (SELECT value FROM json_each(?))`: on the project's
// machine (a virtual one, where each page fault and each TLB flush is expensive) an
// UPDATE of 20 deliveries that way cost 570–810 µs of CPU with the default thresholds and
// 85–130 µs without the giving back. keepCHeap raises the thresholds once, before the
// engine's first connection: up to 4 MiB free at a heap's top stays with the process, and
// blocks under 1 MiB come from the heap rather than a mapping of their own (fixing the
// thresholds turns off glibc's own adjustment of the second, which would otherwise map
// and unmap each block above 128 KiB). Other C libraries are left as they are.

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static void consign_keep_c_heap(int trim, int mmap) {
	mallopt(M_MMAP_THRESHOLD, mmap);
	mallopt(M_TRIM_THRESHOLD, trim);
}
#else
static void consign_keep_c_heap(int trim, int mmap) {}
#endif
*/
import "C"

import "sync"

// keepCHeap sets the C allocator's thresholds once per process.
var keepCHeap = sync.OnceFunc(func() { C.consign_keep_c_heap(4<<20, 1<<20) })
