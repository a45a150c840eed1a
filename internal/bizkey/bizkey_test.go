package bizkey_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/bizkey"
	"github.com/consign-dev/consign/internal/filter"
	"github.com/consign-dev/consign/internal/schema"
)

// decode decodes a payload as schema validation does.
func decode(tb testing.TB, raw string) any {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	require.NoError(tb, dec.Decode(&v))
	return v
}

func TestFind(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", bizkey.MaxValueBytes)
	many := make([]string, 20)
	for i := range many {
		many[i] = `"` + strings.Repeat("k", i+1) + `"`
	}
	tests := []struct {
		name     string
		pointers []string
		payload  string
		want     []string
	}{
		{"string and integer", []string{"/order_id", "/po_number"}, `{"order_id": 1001, "po_number": "PO-4411"}`, []string{"1001", "PO-4411"}},
		{"nested", []string{"/purchase/reference"}, `{"purchase": {"id": 258, "reference": "10234-01"}}`, []string{"10234-01"}},
		{"each element", []string{"/lineItems/*/sku"}, `{"lineItems": [{"sku": "A-1"}, {"sku": "B-2"}, {"qty": 1}, {"sku": "A-1"}]}`, []string{"A-1", "B-2"}},
		{"array of scalars", []string{"/ids"}, `{"ids": [7, "8", true, null, 1.5, [9], {"a": 1}]}`, []string{"7", "8"}},
		{"array index", []string{"/lines/1/sku"}, `{"lines": [{"sku": "first"}, {"sku": "second"}]}`, []string{"second"}},
		{"index past the end", []string{"/lines/5/sku"}, `{"lines": [{"sku": "first"}]}`, nil},
		{"star names a member of an object", []string{"/m/*"}, `{"m": {"*": "star", "x": "no"}}`, []string{"star"}},
		{"escaped pointer", []string{"/a~1b/c~0d"}, `{"a/b": {"c~d": "found"}}`, []string{"found"}},
		{"escaped string", []string{"/id"}, `{"id": "PO\u002d44\"11"}`, []string{`PO-44"11`}},
		{"not integers", []string{"/a", "/b", "/c", "/d"}, `{"a": 1.5, "b": 1e3, "c": -7, "d": 10.0}`, []string{"-7"}},
		{"other types", []string{"/a", "/b", "/c", "/d"}, `{"a": true, "b": null, "c": {"x": 1}, "d": ""}`, nil},
		{"longest kept", []string{"/a", "/b"}, `{"a": "` + long + `", "b": "` + long + `y"}`, []string{long}},
		{"once per value", []string{"/order_id", "/lines/*/order_id"}, `{"order_id": "1001", "lines": [{"order_id": 1001}]}`, []string{"1001"}},
		{"missing", []string{"/order_id"}, `{"id": 1}`, nil},
		{"not an object", []string{"/0"}, `["a"]`, nil},
		{"duplicate member: the last", []string{"/id"}, `{"id": "first", "id": "last"}`, []string{"last"}},
		{"at most MaxValues", []string{"/k"}, `{"k": [` + strings.Join(many, ",") + `]}`, func() []string {
			var out []string
			for i := range bizkey.MaxValues {
				out = append(out, strings.Repeat("k", i+1))
			}
			return out
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := bizkey.Compile(tt.pointers)
			require.NoError(t, err)
			require.Equal(t, tt.want, s.FromValue(decode(t, tt.payload)), "from the decoded payload")
			require.Equal(t, tt.want, s.FromDoc(&filter.Doc{Payload: json.RawMessage(tt.payload)}), "from the raw payload")
		})
	}
}

func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	nine := []string{"/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h", "/i"}
	tests := []struct {
		name     string
		pointers []string
		field    string
	}{
		{"too many", nine, "keys"},
		{"empty", []string{"/id", ""}, "keys[1]"},
		{"root", []string{"/"}, "keys[0]"},
		{"no slash", []string{"order_id"}, "keys[0]"},
		{"bad escape", []string{"/a~2"}, "keys[0]"},
		{"twice", []string{"/id", "/id"}, "keys[1]"},
		{"too long", []string{"/" + strings.Repeat("a", 300)}, "keys[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := bizkey.Compile(tt.pointers)
			var e *consign.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, consign.EINVALID, e.Code)
			var fields []string
			for _, f := range e.Fields {
				fields = append(fields, f.Field)
			}
			require.Contains(t, fields, tt.field, "%v", err)
		})
	}
	s, err := bizkey.Compile(nil)
	require.NoError(t, err)
	require.Nil(t, s.FromDoc(&filter.Doc{Payload: json.RawMessage(`{"id": 1}`)}), "no keys, nothing found")
}

func TestValidQuery(t *testing.T) {
	t.Parallel()
	require.Empty(t, bizkey.ValidQuery("PO-4411"))
	require.NotEmpty(t, bizkey.ValidQuery(""))
	require.NotEmpty(t, bizkey.ValidQuery(strings.Repeat("x", bizkey.MaxValueBytes+1)))
	require.NotEmpty(t, bizkey.ValidQuery("\xff"))
}

// FuzzFind holds the two ways of finding keys to the same answer on any payload that is a
// JSON object, and both to the bounds on any bytes at all.
func FuzzFind(f *testing.F) {
	anyObject, err := schema.Compile([]byte(`{"type":"object"}`))
	require.NoError(f, err)
	f.Add([]byte(`{"order_id": 1001, "lineItems": [{"sku": "A"}, {"sku": 2}], "po_number": "PO-1"}`), "/lineItems/*/sku")
	f.Add([]byte(`{"ids": [1, "2", 3.5], "a/b": {"~": "x"}}`), "/a~1b/~0")
	f.Add([]byte(`{"id": "\u00e9\ud83d\ude00", "id": 7}`), "/id")
	f.Add([]byte(`[1, 2]`), "/0")
	f.Add([]byte(`{"x": {"y": [[1], {"z": "q"}]}}`), "/x/y/1/z")
	f.Fuzz(func(t *testing.T, payload []byte, pointer string) {
		s, err := bizkey.Compile([]string{"/order_id", "/lineItems/*/sku", "/ids", pointer})
		if err != nil {
			return
		}
		fromDoc := s.FromDoc(&filter.Doc{Payload: payload})
		require.LessOrEqual(t, len(fromDoc), bizkey.MaxValues)
		fields := make([][]byte, len(s.Tops()))
		if noted, err := anyObject.ValidateFields(payload, s.Tops(), fields); noted && err == nil {
			require.Equal(t, fromDoc, s.FromFields(fields), "the members the schema's pass cut out give the payload's keys")
		}
		seen := map[string]bool{}
		for _, k := range fromDoc {
			require.Empty(t, bizkey.ValidQuery(k), "a found key is searchable: %q", k)
			require.False(t, seen[k], "each key once: %q", k)
			seen[k] = true
		}
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil || dec.More() {
			return
		}
		if _, ok := v.(map[string]any); !ok || !json.Valid(payload) {
			return
		}
		require.Equal(t, s.FromValue(v), fromDoc, "the decoded and the raw payload give the same keys")
	})
}
