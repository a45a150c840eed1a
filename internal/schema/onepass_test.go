package schema

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
)

// general is s without its one-pass check: the general way alone.
func general(s *Schema) *Schema { return &Schema{s: s.s} }

// onePassSchemas are schemas the one-pass check applies, with documents each.
var onePassSchemas = []struct {
	schema string
	docs   []string
}{
	{`{"type":"object","required":["sku","quantity"],"properties":{"sku":{"type":"string","minLength":1,"maxLength":5},
		"quantity":{"type":"integer","minimum":1,"maximum":100},"price":{"type":"number","exclusiveMinimum":0}},"additionalProperties":false}`,
		[]string{`{"sku":"A-1","quantity":3}`, `{"sku":"A-1","quantity":3,"price":9.5}`, `{"sku":"","quantity":3}`, `{"sku":"ABCDEF","quantity":3}`,
			`{"sku":"ÄÖÜßé","quantity":3}`, `{"sku":"\u00c4","quantity":3}`, `{"sku":"A","quantity":0}`, `{"sku":"A","quantity":100}`,
			`{"sku":"A","quantity":101}`, `{"sku":"A","quantity":1.0}`, `{"sku":"A","quantity":1e1}`, `{"sku":"A","quantity":3,"price":0}`,
			`{"sku":"A","quantity":3,"price":-0.0}`, `{"sku":"A","quantity":3,"price":1e-320}`, `{"sku":"A","quantity":3,"extra":1}`,
			`{"sku":"A"}`, `{"quantity":3}`, `{"sku":"A","quantity":3,"sku":"B"}`, `{"sku":"A","quantity":3,"sku":7}`, `{"sk\u0075":"A","quantity":3}`,
			`[]`, `"x"`, `{"sku":"A","quantity":3`, `{"sku":"A","quantity":03}`, `{"sku":"A","quantity":3} x`, ` {"sku":"A","quantity":3} `,
			`{"sku":"A","quantity":100.00000000000001}`, `{"sku":"A","quantity":99.99999999999999}`, `{"sku":"A\x01","quantity":3}`, ``}},
	{`{"type":"object","properties":{"id":{"type":["string","integer"]},"lineItems":{"type":"array","items":{"type":"object"}},
		"fulfillments":{"type":"array","items":{"type":"object"},"minItems":1,"maxItems":2}}}`,
		[]string{`{"id":"o-1","lineItems":[{},{"a":[1,{"b":null}]}],"fulfillments":[{}]}`, `{"id":7,"fulfillments":[{}]}`, `{"id":7.5}`,
			`{"id":null}`, `{"lineItems":[{},1]}`, `{"fulfillments":[]}`, `{"fulfillments":[{},{},{}]}`, `{"x":[1,2,[3,[4,[5]]]],"y":{"z":true,"w":false}}`,
			`{"x":[1,2,}`, `{"x":tru}`, `{"x":"\q"}`, `{"x":"\ud83d\ude00"}`, `{"x":-}`, `{"x":1.}`, `{"x":.5}`, `{"x":1e}`, `{"x":[1 2]}`, `{,}`, `{"a" 1}`}},
	{`{"$ref":"#/$defs/line","$defs":{"line":{"type":"object","required":["sku"],"properties":{"sku":{"type":"string"}},
		"additionalProperties":{"type":"number"}}}}`,
		[]string{`{"sku":"A","n":1}`, `{"sku":"A","n":"1"}`, `{"n":1}`, `{"sku":"A"}`}},
	{`{"type":"array","items":{"type":"integer","exclusiveMaximum":10,"minimum":-5}}`,
		[]string{`[1,2,3]`, `[10]`, `[9]`, `[-5]`, `[-6]`, `[-5.5]`, `[9.999999999999999999]`, `[]`, `[1,]`}},
	{`true`, []string{`{"anything":[1,2]}`, `1`, `nul`}},
}

// TestOnePassAgrees: what the one-pass check passes, the general way passes too, and
// Validate answers as the general way does, message and all.
func TestOnePassAgrees(t *testing.T) {
	t.Parallel()
	for _, tc := range onePassSchemas {
		s, err := Compile([]byte(tc.schema))
		require.NoError(t, err)
		require.NotNil(t, s.onePass, "the one-pass check applies %s", tc.schema)
		for _, doc := range tc.docs {
			want := general(s).Validate([]byte(doc))
			if onePass(s.onePass, []byte(doc)) {
				require.NoError(t, want, "one pass passed %s against %s", doc, tc.schema)
			}
			got := s.Validate([]byte(doc))
			if want == nil {
				require.NoError(t, got, doc)
			} else {
				require.EqualError(t, got, want.Error(), doc)
			}
		}
	}
}

// TestOnePassDecides: the documents that matter for speed — valid ones without escapes
// — pass in one pass; ones with escapes or near bounds hand over.
func TestOnePassDecides(t *testing.T) {
	t.Parallel()
	s, err := Compile([]byte(onePassSchemas[0].schema))
	require.NoError(t, err)
	for doc, want := range map[string]bool{
		`{"sku":"A-1","quantity":3}`:              true,
		` {"sku":"ÄÖÜßé","quantity":100} `:        true,
		`{"sku":"A","quantity":3,"price":0.01}`:   true,
		`{"sku":"\u00c4","quantity":3}`:           false, // a length of a string with escapes
		`{"sku":"A","quantity":1.0}`:              false, // an integer with a fraction
		`{"sku":"A","quantity":3,"price":1e-320}`: true,
		`{"sku":"A","quantity":3,"price":0.0}`:    false, // at an exclusive bound
		`{"sku":"A","quantity":3,"extra":1}`:      false,
	} {
		require.Equal(t, want, onePass(s.onePass, []byte(doc)), doc)
	}
}

// TestOnePassApplies: the built-in catalog's payload schemas are checked in one pass;
// schemas with keywords it does not apply are not.
func TestOnePassApplies(t *testing.T) {
	t.Parallel()
	for _, et := range consign.BuiltinEventTypes() {
		if len(et.Schema) == 0 || strings.HasPrefix(et.Name, consign.OperationalPrefix) {
			continue
		}
		s, err := Compile(et.Schema)
		require.NoError(t, err)
		require.NotNil(t, s.onePass, et.Name)
	}
	for _, doc := range []string{
		`{"type":"string","format":"date-time"}`, `{"enum":[1,2]}`, `{"anyOf":[{"type":"string"},{"type":"integer"}]}`,
		`{"properties":{"a":{"pattern":"^x"}}}`, `{"type":"number","multipleOf":0.5}`, `{"minProperties":1}`,
		`{"items":{"uniqueItems":true}}`, `{"prefixItems":[{"type":"string"}]}`, `{"type":"number","maximum":0.1}`,
	} {
		s, err := Compile([]byte(doc))
		require.NoError(t, err)
		require.Nil(t, s.onePass, doc)
	}
}

// TestValidateFields: the members a caller names are cut out of the payload by the
// schema's own pass (the business keys' values, read without a second parse), the last
// of a repeated name as a decode into a map keeps; a payload the one-pass check leaves to
// the general way notes nothing and is judged as Validate judges it.
func TestValidateFields(t *testing.T) {
	t.Parallel()
	s, err := Compile([]byte(`{"type":"object","properties":{"id":{"type":["string","integer"]},"n":{"type":"integer","maximum":10}}}`))
	require.NoError(t, err)
	names := []string{"id", "order_id", "lines"}
	for _, tt := range []struct {
		name, doc string
		noted     bool
		fields    []string // "" for nil
		err       string
	}{
		{"string and array", ` {"id": "ord_1", "x": {"id": "inner"}, "lines": [{"sku": "A"}, 2]} `, true, []string{`"ord_1"`, "", `[{"sku": "A"}, 2]`}, ""},
		{"integer", `{"order_id":1001,"id":7}`, true, []string{"7", "1001", ""}, ""},
		{"repeated name: the last", `{"id":"a","id":"b"}`, true, []string{`"b"`, "", ""}, ""},
		{"none of them", `{"other":true}`, true, []string{"", "", ""}, ""},
		{"not an object", `[{"id":"a"}]`, false, []string{"", "", ""}, "object"},
		{"escaped key: the general way", `{"\u0069d":"a"}`, false, []string{"", "", ""}, ""},
		{"fails the schema", `{"id":true}`, false, []string{"", "", ""}, "id"},
		{"invalid JSON", `{"id":"a"`, false, []string{"", "", ""}, "not valid JSON"},
		{"at the bound", `{"id":"a","n":10}`, true, []string{`"a"`, "", ""}, ""},
		{"above the bound", `{"id":"a","n":11}`, false, []string{"", "", ""}, "maximum"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fields := [][]byte{[]byte("stale"), nil, []byte("stale")}
			noted, err := s.ValidateFields([]byte(tt.doc), names, fields)
			require.Equal(t, tt.noted, noted)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
			} else {
				require.NoError(t, err)
			}
			for i, want := range tt.fields {
				if want == "" {
					require.Nil(t, fields[i], names[i])
				} else {
					require.Equal(t, want, string(fields[i]), names[i])
				}
			}
		})
	}
}

// TestOnePassWork: the one-pass check counts the schemas it applies; past MaxWork the
// general way refuses the payload as before.
func TestOnePassWork(t *testing.T) {
	t.Parallel()
	s, err := Compile([]byte(`{"type":"array","items":{"type":"integer"}}`))
	require.NoError(t, err)
	require.NotNil(t, s.onePass)
	many := "[" + strings.Repeat("1,", MaxWork) + "1]"
	require.False(t, onePass(s.onePass, []byte(many)))
	require.ErrorContains(t, s.Validate([]byte(many)), "too large for this schema to check")
}

// fuzzSchemas compiles onePassSchemas and seeds f with each one's documents, each as
// the given forms make it (doc itself: "%s").
func fuzzSchemas(f *testing.F, forms ...string) []*Schema {
	var schemas []*Schema
	for _, tc := range onePassSchemas {
		s, err := Compile([]byte(tc.schema))
		require.NoError(f, err)
		schemas = append(schemas, s)
		for _, doc := range tc.docs {
			for _, form := range forms {
				f.Add(uint8(len(schemas)-1), []byte(strings.Replace(form, "%s", doc, 1)))
			}
		}
	}
	return schemas
}

func FuzzOnePass(f *testing.F) {
	schemas := fuzzSchemas(f, "%s")
	names := []string{"sku", "id", "lineItems", "a", "missing"}
	f.Fuzz(func(t *testing.T, which uint8, doc []byte) {
		s := schemas[int(which)%len(schemas)]
		if onePass(s.onePass, doc) {
			require.True(t, json.Valid(doc), "one pass passed invalid JSON %q", doc)
			require.NoError(t, general(s).Validate(doc), "one pass passed %q", doc)
		}
		fields := make([][]byte, len(names))
		noted, err := s.ValidateFields(doc, names, fields)
		require.Equal(t, s.Validate(doc) == nil, err == nil, "ValidateFields and Validate agree on %q", doc)
		if !noted {
			require.Equal(t, make([][]byte, len(names)), fields, "nothing noted when the payload went the general way")
			return
		}
		require.NoError(t, err)
		var top map[string]json.RawMessage
		if json.Unmarshal(doc, &top) != nil {
			top = nil // not an object: no member noted
		}
		for i, name := range names {
			want, ok := top[name] // encoding/json keeps the last of a repeated name
			if !ok {
				require.Nil(t, fields[i], "%s is not a member of %q", name, doc)
				continue
			}
			require.Equal(t, string(want), string(fields[i]), "the raw value of %s in %q", name, doc)
		}
	})
}

// TestValidatePrefix: the value at the start of a request body's remainder is read up to
// its end, checked, its members noted, and marked verbatim only when encoding/json writes
// it as it is.
func TestValidatePrefix(t *testing.T) {
	t.Parallel()
	s, err := Compile([]byte(onePassSchemas[0].schema))
	require.NoError(t, err)
	names := []string{"sku"}
	for _, tt := range []struct {
		b        string
		n        int // -1: not accepted
		verbatim bool
		sku      string
	}{
		{`{"sku":"A-1","quantity":3},"idempotency_key":"k"}`, 26, true, `"A-1"`},
		{`{"sku":"A-1","quantity":3}`, 26, true, `"A-1"`},
		{`{"sku":"A-1","quantity":3}]}`, 26, true, `"A-1"`},
		{`{"sku":"A-1", "quantity":3}`, 27, false, `"A-1"`},
		{"{\"sku\":\"A-1\",\"quantity\":3\n}", 27, false, `"A-1"`},
		{`{"sku":"<A>","quantity":3}`, 26, false, `"<A>"`},
		{`{"sku":"A&B","quantity":3}`, 26, false, `"A&B"`},
		{`{"sku":"€","quantity":3}`, 26, false, `"€"`},
		{`{"sku":"Ä","quantity":3}`, 25, true, `"Ä"`},
		{`{"sku":"A","quantity":3,"price":"\u0031"}`, -1, false, ""}, // refused (a string price)
		{`{"sku":"A","quantity":3`, -1, false, ""},
		{` {"sku":"A","quantity":3}`, -1, false, ""}, // the caller skips white space before the value
		{`{"sku":"A","quantity":3}x`, 24, true, `"A"`},
		{`{"sku":"A","quantity":03}`, -1, false, ""},
	} {
		fields := [][]byte{[]byte("stale")}
		n, verbatim := s.ValidatePrefix([]byte(tt.b), names, fields)
		require.Equal(t, tt.n, n, tt.b)
		require.Equal(t, tt.verbatim, verbatim, tt.b)
		if tt.sku == "" {
			require.Nil(t, fields[0], tt.b)
		} else {
			require.Equal(t, tt.sku, string(fields[0]), tt.b)
		}
	}
	require.Equal(t, consign.MaxEventTypeKeys, maxNoted, "the check notes as many members as keys may start from")
	any, err := Compile([]byte(`true`))
	require.NoError(t, err)
	n, verbatim := any.ValidatePrefix([]byte(`"a\"b",`), nil, nil)
	require.Equal(t, 6, n)
	require.False(t, verbatim, "escapes are not told apart")
}

// FuzzValidatePrefix: what ValidatePrefix accepts is one valid JSON value, the one
// encoding/json's decoder reads first from the same bytes, that the schema accepts; one
// it marks verbatim encoding/json writes as it is; and a whole document it accepts,
// Validate accepts with the same members noted.
func FuzzValidatePrefix(f *testing.F) {
	schemas := fuzzSchemas(f, `%s,"next":1}`, "%s")
	names := []string{"sku", "id", "lineItems", "a", "missing"}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		s := schemas[int(which)%len(schemas)]
		fields := make([][]byte, len(names))
		n, verbatim := s.ValidatePrefix(b, names, fields)
		if n < 0 {
			require.False(t, verbatim)
			require.Equal(t, make([][]byte, len(names)), fields, "nothing noted for a value not accepted")
			return
		}
		value := b[:n]
		require.True(t, json.Valid(value), "accepted invalid JSON %q", value)
		require.NoError(t, general(s).Validate(value), "accepted %q", value)
		var first json.RawMessage
		require.NoError(t, json.NewDecoder(bytes.NewReader(b)).Decode(&first), "%q", b)
		require.Equal(t, string(value), string(first), "the first value of %q", b)
		if verbatim {
			out, err := json.Marshal(json.RawMessage(value))
			require.NoError(t, err)
			require.Equal(t, string(value), string(out), "marked verbatim")
		}
		whole := make([][]byte, len(names))
		noted, err := s.ValidateFields(value, names, whole)
		require.NoError(t, err)
		require.True(t, noted)
		for i := range names {
			require.Equal(t, string(whole[i]), string(fields[i]), names[i])
		}
	})
}
