package inbound

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/consign-dev/consign"
)

// Pointer is a parsed RFC 6901 JSON pointer: its reference tokens, unescaped. The empty
// pointer refers to the whole document.
type Pointer []string

// ParsePointer parses an RFC 6901 JSON pointer such as "/data/0/id".
func ParsePointer(s string) (Pointer, error) {
	if msg := consign.ValidJSONPointer(s); msg != "" {
		return nil, errors.New(msg)
	}
	if s == "" {
		return Pointer{}, nil
	}
	tokens := strings.Split(s[1:], "/")
	for i, t := range tokens {
		// "~1" first: "~01" is "~1", not "/".
		tokens[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return tokens, nil
}

// Lookup returns the JSON value the pointer refers to in doc, exactly as it is written
// there, and whether there is one. doc must be valid JSON.
func (p Pointer) Lookup(doc []byte) (json.RawMessage, bool) {
	cur := bytes.TrimSpace(doc)
	for _, tok := range p {
		if len(cur) == 0 {
			return nil, false
		}
		switch cur[0] {
		case '{':
			var m map[string]json.RawMessage
			if json.Unmarshal(cur, &m) != nil {
				return nil, false
			}
			v, ok := m[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case '[':
			i, ok := arrayIndex(tok)
			if !ok {
				return nil, false
			}
			var a []json.RawMessage
			if json.Unmarshal(cur, &a) != nil || i >= len(a) {
				return nil, false
			}
			cur = a[i]
		default:
			return nil, false
		}
	}
	return json.RawMessage(cur), true
}

// arrayIndex reads an RFC 6901 array index: "0", or digits without a leading zero.
func arrayIndex(tok string) (int, bool) {
	if tok == "" || len(tok) > 9 || (tok[0] == '0' && len(tok) > 1) {
		return 0, false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(tok)
	return n, err == nil
}

// KeyOf turns a JSON value into a dedupe key: a string is its text, null or "" is no
// key, anything else is its compact JSON (so the number 3 and the string "3" are the
// same id, as providers mix them between webhooks and list APIs).
func KeyOf(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return NormalizeKey(s)
	}
	if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return ""
	}
	return NormalizeKey(b.String())
}

// NormalizeKey trims a dedupe key and replaces one that is too long or not printable
// text by its SHA-256, so any key can be stored and shown.
func NormalizeKey(k string) string {
	k = strings.TrimSpace(k)
	if k == "" {
		return ""
	}
	printable := utf8.ValidString(k) && !strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == 0x7f })
	if len(k) > consign.MaxDedupeKey || !printable {
		sum := sha256.Sum256([]byte(k))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return k
}
