// Package bizkey finds an event's business keys: the values at the JSON pointers its
// event type names ("keys": ["/order_id", "/lineItems/*/sku"]), so that everything about
// order 1001 or PO 4411 can be found through an index (GET …/events?key=1001).
//
// Design: an event type's pointers are compiled once (Compile) and applied to each
// payload at publish, in the request's goroutine, before the event reaches the
// committer. The payload is not decoded whole for it: only the top-level fields the
// pointers start with are, through a filter.Doc that notes where the fields are in one
// pass (FromDoc), and the rest of each pointer is walked in those values. A fuzz target
// holds the answer to the one of a full decode.
//
// The rules, kept simple so that a user can tell what will be found:
//   - A pointer is RFC 6901 ("/purchase/reference", "/lines/0/sku"), plus one extension:
//     a "*" step into an array takes each of its elements ("/lineItems/*/sku"). On an
//     object, "*" is the member named "*".
//   - At the pointer, a string is a key as it is, an integer written without fraction or
//     exponent (1001, -7) a key as written; an array gives each of its strings and
//     integers. Anything else (objects, booleans, null, 1.5, 1e3) gives nothing, and so
//     do empty strings and values longer than MaxValueBytes (cut, they would find the
//     wrong events).
//   - An event keeps at most MaxValues keys, each once, in pointer order and, within an
//     array, in document order.
package bizkey

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/filter"
)

// Bounds on what one event adds to the index.
const (
	// MaxValueBytes is the longest key value indexed, in bytes.
	MaxValueBytes = 128
	// MaxValues is how many key values one event keeps.
	MaxValues = 16
)

// Set is an event type's compiled key pointers; safe for concurrent use. A nil Set
// finds nothing.
type Set struct {
	paths [][]string // each pointer's reference tokens, unescaped
	tops  []string   // the paths' first tokens, each once
}

// Compile parses an event type's key pointers. Its errors name the pointer at fault by
// its place ("keys[2]") for a field error of the API.
func Compile(pointers []string) (*Set, error) {
	var v consign.Validation
	ValidatePointers(&v, "keys", pointers)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if len(pointers) == 0 {
		return nil, nil
	}
	s := &Set{paths: make([][]string, len(pointers))}
	for i, p := range pointers {
		s.paths[i] = tokens(p)
		if !slices.Contains(s.tops, s.paths[i][0]) {
			s.tops = append(s.tops, s.paths[i][0])
		}
	}
	return s, nil
}

// ValidatePointers adds to v what is wrong with an event type's key pointers, each under
// field[i].
func ValidatePointers(v *consign.Validation, field string, pointers []string) {
	if len(pointers) > consign.MaxEventTypeKeys {
		v.Add(field, "must name at most %d pointers", consign.MaxEventTypeKeys)
		return
	}
	seen := map[string]bool{}
	for i, p := range pointers {
		name := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case p == "" || p == "/":
			v.Add(name, `is empty: want a JSON pointer into the payload such as "/order_id" or "/lineItems/*/sku"`)
		case len(p) > 200:
			v.Add(name, "must be at most 200 characters")
		case !utf8.ValidString(p):
			v.Add(name, "must be valid UTF-8")
		case seen[p]:
			v.Add(name, "%q is named twice", p)
		default:
			if msg := consign.ValidJSONPointer(p); msg != "" {
				v.Add(name, "%s", msg)
			}
		}
		seen[p] = true
	}
}

// tokens splits a valid, non-empty pointer into its unescaped reference tokens.
func tokens(p string) []string {
	ts := strings.Split(p[1:], "/")
	for i, t := range ts {
		if strings.Contains(t, "~") {
			ts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
		}
	}
	return ts
}

// Tops returns the top-level members the pointers start with, each once, in the order
// FromFields takes their values.
func (s *Set) Tops() []string {
	if s == nil {
		return nil
	}
	return s.tops
}

// FromFields returns the keys of a payload from the raw JSON values of its top-level
// members (fields[i] is that of Tops()[i], nil when absent), cut out by a pass that has
// checked them, such as the schema's (schema.ValidateFields): what FromDoc finds in the
// payload, without reading it again.
func (s *Set) FromFields(fields [][]byte) []string {
	var decoded [consign.MaxEventTypeKeys]any // Compile allows no more pointers, so no more tops
	return s.find(func(key string) (any, bool) {
		for i, t := range s.tops {
			if t != key || fields[i] == nil {
				continue
			}
			if decoded[i] == nil {
				decoded[i] = filter.DecodeValue(fields[i])
			}
			return decoded[i], true
		}
		return nil, false
	})
}

// FromDoc returns the keys of the payload of d, decoding only the top-level fields the
// pointers start with (and sharing that work with the filters evaluated on d).
func (s *Set) FromDoc(d *filter.Doc) []string {
	return s.find(d.PayloadField)
}

// find walks each pointer from the payload's top-level field its first token names
// (top looks it up).
func (s *Set) find(top func(key string) (any, bool)) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, path := range s.paths {
		v, ok := top(path[0])
		if !ok {
			continue
		}
		out = walk(v, path[1:], out)
		if len(out) == MaxValues {
			break
		}
	}
	return out
}

// walk follows path from v and appends the keys it finds, up to MaxValues.
func walk(v any, path []string, out []string) []string {
	if len(out) == MaxValues {
		return out
	}
	if len(path) == 0 {
		if a, ok := v.([]any); ok {
			for _, e := range a {
				if out = add(out, e); len(out) == MaxValues {
					break
				}
			}
			return out
		}
		return add(out, v)
	}
	switch x := v.(type) {
	case map[string]any:
		if e, ok := x[path[0]]; ok {
			return walk(e, path[1:], out)
		}
	case []any:
		if path[0] == "*" {
			for _, e := range x {
				if out = walk(e, path[1:], out); len(out) == MaxValues {
					break
				}
			}
			return out
		}
		if i, ok := arrayIndex(path[0]); ok && i < len(x) {
			return walk(x[i], path[1:], out)
		}
	}
	return out
}

// arrayIndex parses an RFC 6901 array index: digits without a leading zero.
func arrayIndex(t string) (int, bool) {
	if t == "" || len(t) > 9 || (len(t) > 1 && t[0] == '0') {
		return 0, false
	}
	i, err := strconv.Atoi(t)
	return i, err == nil && i >= 0
}

// add appends the key that the scalar v gives, if any and not there yet.
func add(out []string, v any) []string {
	var k string
	switch x := v.(type) {
	case string:
		k = x
	case json.Number:
		if !integer(string(x)) {
			return out
		}
		k = string(x)
	default:
		return out
	}
	if k == "" || len(k) > MaxValueBytes || !utf8.ValidString(k) {
		return out
	}
	for _, o := range out {
		if o == k {
			return out
		}
	}
	return append(out, k)
}

// integer reports whether a JSON number is written as an integer: -?digits.
func integer(n string) bool {
	n = strings.TrimPrefix(n, "-")
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

// ValidQuery reports why q cannot be a key to search for, or "" when it can.
func ValidQuery(q string) string {
	switch {
	case q == "":
		return "is empty: give the value to search for, such as an order id"
	case len(q) > MaxValueBytes:
		return fmt.Sprintf("must be at most %d bytes: longer values are not indexed", MaxValueBytes)
	case !utf8.ValidString(q):
		return "must be valid UTF-8"
	}
	return ""
}
