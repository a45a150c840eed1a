//go:build consign_stdlib

package sqlite

import (
	"encoding/json"

	"github.com/consign-dev/consign"
)

// The attempts' JSON documents through encoding/json, in builds tagged consign_stdlib:
// the standard path beside the encoders of jsonenc.go. Each value always encodes (strings
// and maps of strings), so the errors are not checked.

// appendRequest appends r as JSON.
func appendRequest(b []byte, r *consign.AttemptRequest) []byte {
	j, _ := json.Marshal(r)
	return append(b, j...)
}

// appendStringMap appends m as a JSON object, null when m is nil.
func appendStringMap(b []byte, m map[string]string) []byte {
	j, _ := json.Marshal(m)
	return append(b, j...)
}

// appendStrings appends ss as a JSON array of strings.
func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		ss = []string{} // an array, as the hand-made encoder writes
	}
	j, _ := json.Marshal(ss)
	return append(b, j...)
}
