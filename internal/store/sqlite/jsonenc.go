//go:build !consign_stdlib

package sqlite

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/consign-dev/consign"
)

// The dispatcher records an attempt per delivery, each with its request and response
// headers as JSON; encoding/json spent a fifth of the recording transaction on them
// (reflection, sorting map keys). These encoders write the same JSON documents, read back
// by encoding/json, without either: map keys come in map order. Builds tagged
// consign_stdlib use encoding/json itself (jsonenc_stdlib.go).

// appendRequest appends r as the JSON object encoding/json would make of it.
func appendRequest(b []byte, r *consign.AttemptRequest) []byte {
	b = append(b, `{"method":`...)
	b = appendString(b, r.Method)
	b = append(b, `,"url":`...)
	b = appendString(b, r.URL)
	b = append(b, `,"headers":`...)
	b = appendStringMap(b, r.Headers)
	return append(b, '}')
}

// appendStringMap appends m as a JSON object, null when m is nil.
func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	first := true
	for k, v := range m {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, v)
	}
	return append(b, '}')
}

// appendStrings appends ss as a JSON array of strings.
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s as a JSON string: printable ASCII is copied, anything else is
// left to encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
