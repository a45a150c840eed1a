package sqlite

import (
	"encoding/json"

	"github.com/consign-dev/consign"
)

// The JSON documents of attempts (request and response headers) and of id lists, by
// encoding/json. Each value always encodes (strings and maps of strings), so the errors
// are not checked. (Hand-written encoders measured no difference in the server's CPU a
// delivery: docs/performance.md, "The standard library's paths".)

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
		ss = []string{} // an array, never null
	}
	j, _ := json.Marshal(ss)
	return append(b, j...)
}
