//go:build !consign_stdlib

package filter

// lazyIndex: the payload's top-level fields are found by the one-pass check of lazy.go
// and only those a filter names are decoded (docs/performance.md, "Filters").
const lazyIndex = true
