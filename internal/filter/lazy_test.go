package filter

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// decodedDoc is the document as a full decode sees it: the payload decoded whole with
// encoding/json into maps, missing when it does not decode.
func decodedDoc(d *Doc) map[string]any {
	m := map[string]any{"type": d.Type}
	dec := json.NewDecoder(bytes.NewReader(d.Payload))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) == nil {
		m["payload"] = v
	}
	if d.OrderingKey != "" {
		m["ordering_key"] = d.OrderingKey
	}
	return m
}

// TestMatchLazyAgreesWithFullDecode: the payloads where decoding only the named fields
// could go wrong give the same answer as decoding the payload whole.
func TestMatchLazyAgreesWithFullDecode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, payload, filter string
		want                  bool
	}{
		{"duplicate key: the last counts", `{"a": 1, "a": 2}`, `{"payload": {"a": 2}}`, true},
		{"duplicate key: the first does not", `{"a": 1, "a": 2}`, `{"payload": {"a": 1}}`, false},
		{"escaped key", `{"t\u006ftal": 750}`, `{"payload": {"total": 750}}`, true},
		{"escaped string value", `{"c": "U\u0053"}`, `{"payload": {"c": "US"}}`, true},
		{"non-ASCII value", `{"city": "Zürich"}`, `{"payload": {"city": {"$prefix": "Zü"}}}`, true},
		{"invalid UTF-8 key becomes U+FFFD", "{\"a\xff\": 1}", `{"payload": {"a` + "\ufffd" + `": 1}}`, true},
		{"key inside a skipped value is not a field", `{"x": {"total": 1, "s": "}\"total\": 2"}, "y": [{"total": 3}]}`, `{"payload": {"total": {"$exists": false}}}`, true},
		{"nested after skipped values", `{"s": "a,b}", "n": -1.5e3, "o": {"p": [1, {"q": null}]}, "w": {"z": true}}`, `{"payload": {"w": {"z": true}, "n": {"$lt": 0}}}`, true},
		{"whole payload compared", `{"b": 2, "a": [1]}`, `{"payload": {"$eq": {"a": [1], "b": 2}}}`, true},
		{"whole payload $in", `{"a": 1}`, `{"payload": {"$in": [{"a": 1.0}]}}`, true},
		{"trailing bytes after the object are ignored", `{"a": 1} trailing`, `{"payload": {"a": 1}}`, true},
		{"invalid object: payload missing", `{"a": 1,}`, `{"payload": {"a": {"$exists": false}}}`, true},
		{"invalid object: $neq passes", `{"a": tru}`, `{"payload": {"$neq": 1}}`, true},
		{"invalid number: payload missing", `{"a": 01}`, `{"payload": {"$exists": false}}`, true},
		{"invalid escape: payload missing", `{"a": "\x"}`, `{"payload": {"$exists": false}}`, true},
		{"control byte in a string: payload missing", "{\"a\": \"x\ty\"}", `{"payload": {"$exists": false}}`, true},
		{"numbers and literals in arrays", `{"a": [0, -0.5, 1E+2, true, false, null, "s", {}, []]}`, `{"payload": {"a": {"$gte": 100}}}`, true},
		{"whitespace around", " \n{ \"a\" : 1 } \n", `{"payload": {"a": 1}}`, true},
		{"empty object", `{}`, `{"payload": {"a": {"$exists": false}}}`, true},
		{"field and whole", `{"a": 1}`, `{"payload": {"$and": [{"a": 1}, {"$eq": {"a": 1}}]}}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Compile([]byte(tc.filter))
			require.NoError(t, err)
			d := &Doc{Type: "t", Payload: json.RawMessage(tc.payload)}
			require.Equal(t, tc.want, f.Match(d))
			require.Equal(t, tc.want, f.root.eval(decodedDoc(d), true), "the full decode disagrees with the table")
		})
	}
}

// FuzzMatchLazy: on any filter and payload, decoding only the fields the filter names
// answers as decoding the payload whole does.
func FuzzMatchLazy(f *testing.F) {
	for _, s := range []string{
		`{"payload": {"total": {"$gte": 500}, "country": {"$in": ["US", "CA"]}}}`,
		`{"payload": {"warehouse": {"id": "WH-7"}, "tags": "b2b", "lines": {"qty": {"$gt": 5}}}}`,
		`{"$or": [{"payload": {"note": null}}, {"payload": {"$eq": {"a": 1}}}]}`,
		`{"payload": {"$not": {"big": {"$exists": false}}, "date": {"$prefix": "2026"}}}`,
	} {
		f.Add([]byte(s), []byte(order))
		f.Add([]byte(s), []byte(`{"total": 750, "total": "x", "t\u006ftal": 1} x`))
		f.Add([]byte(s), []byte(`[{"total": 750}]`))
	}
	f.Fuzz(func(t *testing.T, rule, payload []byte) {
		flt, err := Compile(rule)
		if err != nil || flt == nil {
			return
		}
		d := &Doc{Type: "order.created", Payload: payload, OrderingKey: "k"}
		want := flt.root.eval(decodedDoc(d), true)
		if got := flt.Match(d); got != want {
			t.Fatalf("filter %s on payload %q: lazy %v, full decode %v", rule, payload, got, want)
		}
	})
}

// TestMatchLazyDepthBound: at and just past encoding/json's nesting bound, the lazy
// path agrees with a full decode (which refuses the deeper payload: it is missing).
func TestMatchLazyDepthBound(t *testing.T) {
	t.Parallel()
	f, err := Compile([]byte(`{"payload": {"$exists": true}}`))
	require.NoError(t, err)
	for _, depth := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		p := strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat(`}`, depth)
		d := &Doc{Type: "t", Payload: json.RawMessage(p)}
		want := f.root.eval(decodedDoc(d), true)
		require.Equal(t, depth <= maxDepth, want, "encoding/json's bound moved")
		require.Equal(t, want, f.Match(d), "depth %d", depth)
	}
}

// TestKeyIs: a quoted key matches the name it decodes to, whether it has escapes,
// invalid UTF-8 (decoded as U+FFFD) or neither, and only that name.
func TestKeyIs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		quoted, key string
		want        bool
	}{
		{`"id"`, "id", true},
		{`"id"`, "ids", false},
		{`"ids"`, "id", false},
		{`"id"`, "ix", false},
		{`"\u0069d"`, "id", true},
		{`"\u0069d"`, "\\u0069d", false},
		{"\"i\xffd\"", "i\uFFFDd", true},
		{"\"i\xffd\"", "i\xffd", false},
		{"\"\xff\"", "\xff", false},
		{`"a\"b"`, `a"b`, true},
	}
	for _, tt := range tests {
		var s string
		require.NoError(t, json.Unmarshal([]byte(tt.quoted), &s), "%s is a valid JSON string", tt.quoted)
		require.Equal(t, tt.want, s == tt.key, "the table disagrees with encoding/json on %s", tt.quoted)
		require.Equal(t, tt.want, keyIs([]byte(tt.quoted), tt.key), "%s against %q", tt.quoted, tt.key)
	}
}
