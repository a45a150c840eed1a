//go:build !cgo || !linux

package bench

// freeCMemory does nothing here: without cgo there is no C allocator in the process,
// and outside Linux the memory figures it would clean up are not read (/proc).
func freeCMemory() {}
