//go:build consign_stdlib

package filter

// lazyIndex: in builds tagged consign_stdlib every payload a filter looks into is
// decoded whole by encoding/json, the standard path beside lazy.go's one-pass check.
const lazyIndex = false
