//go:build !cgo || !linux

package bench

// freeCMemory does nothing where the build has no C allocator to trim.
func freeCMemory() {}
