package schema

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	s, err := Compile([]byte(`{"type":"object","required":["sku","quantity"],"properties":{"sku":{"type":"string"},"quantity":{"type":"integer","minimum":0}}}`))
	require.NoError(t, err)
	for _, tc := range []struct {
		doc  string
		want string
	}{
		{`{"sku":"A-1","quantity":3}`, ""},
		{`{"sku":"A-1"}`, "missing property 'quantity'"},
		{`{"sku":"A-1","quantity":-1}`, "at /quantity"},
		{`{"sku":5,"quantity":1}`, "at /sku"},
		{`[1]`, "at /:"},
	} {
		err := s.Validate([]byte(tc.doc))
		if tc.want == "" {
			require.NoError(t, err, tc.doc)
		} else {
			require.ErrorContains(t, err, tc.want, tc.doc)
		}
	}
}

func TestCompileRefusesExternalRefs(t *testing.T) {
	t.Parallel()
	_, err := Compile([]byte(`{"$ref":"file:///etc/passwd"}`))
	require.Error(t, err)
	_, err = Compile([]byte(`{"$ref":"https://example.com/s.json"}`))
	require.Error(t, err)
	_, err = Compile([]byte(`{"type": 5}`))
	require.Error(t, err)
	_, err = Compile([]byte(`not json`))
	require.ErrorContains(t, err, "not valid JSON")
}

func FuzzValidate(f *testing.F) {
	s, err := Compile([]byte(`{"type":"object","properties":{"a":{"type":"array","items":{"type":"number"}}}}`))
	require.NoError(f, err)
	f.Add([]byte(`{"a":[1,2]}`))
	f.Add([]byte(`{"a":"x"}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		_ = s.Validate(doc) // must not panic
	})
}

// nested is a schema n payload levels deep (2n+1 levels of JSON).
func nested(n int) string {
	return strings.Repeat(`{"type":"object","properties":{"a":`, n) + `{"type":"string"}` + strings.Repeat(`}}`, n)
}

// doubling is a schema of n definitions each referring twice to the next: a few hundred
// bytes that unfold into 2^n schemas.
func doubling(n int) string {
	var b strings.Builder
	b.WriteString(`{"$ref":"#/$defs/d0","$defs":{`)
	for i := range n {
		fmt.Fprintf(&b, `"d%d":{"anyOf":[{"$ref":"#/$defs/d%d"},{"minLength":%d,"$ref":"#/$defs/d%d"}]},`, i, i+1, i, i+1)
	}
	fmt.Fprintf(&b, `"d%d":{"type":"string"}}}`, n)
	return b.String()
}

// TestCompileBounds: schemas that would take long to compile or to apply, or that no
// payload could pass, are refused with a message that says why; ordinary ones (the
// built-in catalog's among them) are accepted.
func TestCompileBounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc string
		err       string // "" when accepted
	}{
		{"nested to the limit", nested((MaxDepth - 1) / 2), ""},
		{"one level too deep", nested((MaxDepth + 1) / 2), "more than 64 levels deep"},
		{"1,000 levels", nested(1000), "more than 64 levels deep"},
		{"3,000 levels", nested(3000), "more than 64 levels deep"},
		{"deep arrays", strings.Repeat(`{"enum":[`, 1) + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "]}", "more than 64 levels deep"},
		{"refers to itself", `{"$ref":"#"}`, "refers to itself"},
		{"refers to itself beside other keywords", `{"type":"object","allOf":[{"$ref":"#"}]}`, "refers to itself"},
		{"a cycle through two definitions", `{"$ref":"#/$defs/a","$defs":{"a":{"anyOf":[{"$ref":"#/$defs/b"}]},"b":{"not":{"$ref":"#/$defs/a"}}}}`, "refers to itself"},
		{"recursive through a property", `{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#"}}}}`, "refers to itself"},
		{"dynamic reference", `{"$dynamicAnchor":"node","type":"object","properties":{"next":{"$dynamicRef":"#node"}}}`, "$dynamicRef"},
		{"unfolds into millions", doubling(24), "more than 10000 schemas"},
		{"unfolds into a few thousand", doubling(10), ""},
		{"false", `false`, "refuses every payload"},
		{"a definition used twice", `{"type":"object","properties":{"ship_to":{"$ref":"#/$defs/address"},"bill_to":{"$ref":"#/$defs/address"}},
			"$defs":{"address":{"type":"object","required":["country"],"properties":{"country":{"type":"string","minLength":2}}}}}`, ""},
		{"true", `true`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Compile([]byte(tc.doc))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			// Whatever it decides, an accepted schema reaches a verdict on a payload.
			for _, doc := range []string{`{}`, `{"a":{"a":"x"}}`, `"x"`, `null`, `[1,[2]]`} {
				if err := s.Validate([]byte(doc)); err != nil {
					require.NotContains(t, err.Error(), "reference cycle", doc)
				}
			}
		})
	}
	for _, et := range consign.BuiltinEventTypes() {
		if len(et.Schema) > 0 {
			_, err := Compile(et.Schema)
			require.NoError(t, err, "built-in %s", et.Name)
		}
	}
}

// BenchmarkCompile: the time to accept the deepest schema allowed, one 64 KiB schema of
// such chains, and to refuse a 3,000-level one.
func BenchmarkCompile(b *testing.B) {
	chains := `{"allOf":[` + nested((MaxDepth-1)/2)
	for len(chains) < 63<<10 {
		chains += "," + nested((MaxDepth-1)/2)
	}
	chains += "]}"
	for _, bc := range []struct{ name, doc string }{
		{"deepest", nested((MaxDepth - 1) / 2)},
		{"64KiB-of-deepest", chains},
		{"doubling-10", doubling(10)},
		{"refuse-3000-levels", nested(3000)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				_, _ = Compile([]byte(bc.doc))
			}
		})
	}
}

// FuzzCompile: no schema document makes Compile panic, and a schema it accepts reaches a
// verdict on payloads of every shape, without a reference cycle.
func FuzzCompile(f *testing.F) {
	f.Add([]byte(`{"type":"object","properties":{"a":{"type":"array","items":{"type":"number"}}}}`))
	f.Add([]byte(`{"$ref":"#"}`))
	f.Add([]byte(`{"$ref":"#/$defs/a","$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"}]}}}`))
	f.Add([]byte(nested(40)))
	f.Add([]byte(doubling(6)))
	f.Add([]byte(`{"if":{"const":1},"then":{"$ref":"#/$defs/x"},"else":false,"$defs":{"x":{"minimum":0}}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		if len(doc) > 64<<10 {
			return // the API refuses larger schemas before compiling them
		}
		s, err := Compile(doc)
		if err != nil {
			return
		}
		for _, p := range []string{`{}`, `{"a":[1,"x",{"b":null}]}`, `"x"`, `1`, `null`, `[true,[2]]`} {
			if err := s.Validate([]byte(p)); err != nil {
				require.NotContains(t, err.Error(), "reference cycle", "schema %s, payload %s", doc, p)
			}
		}
	})
}

// TestValidateWork: a payload whose validation would apply schemas to its values more
// than MaxWork times is refused without being validated (a 64 KiB schema applying 4,000
// subschemas to each of 60,000 array items took 5 min 38 s of a core), and an ordinary
// large payload is validated as before.
func TestValidateWork(t *testing.T) { // not parallel: AllocsPerRun
	heavy, err := Compile([]byte(`{"items":{"allOf":[` + strings.Repeat(`{"minLength":1},`, 4000) + `{}]}}`))
	require.NoError(t, err)
	items := "[" + strings.Repeat(`"x",`, 60000) + `"x"]`
	require.ErrorContains(t, heavy.Validate([]byte(items)), "too large for this schema to check")
	require.NoError(t, heavy.Validate([]byte(`["x","y"]`)), "a small payload is checked as before")

	order, err := Compile([]byte(`{"type":"object","required":["id","lines"],"properties":{"id":{"type":"string"},
		"lines":{"type":"array","items":{"type":"object","required":["sku","quantity"],"properties":{
			"sku":{"type":"string","minLength":1},"quantity":{"type":"integer","minimum":1},"price":{"type":"number"}}}}}}`))
	require.NoError(t, err)
	line := `{"sku":"SKU-1","quantity":2,"price":9.5},`
	big := `{"id":"o-1","lines":[` + strings.Repeat(line, 5000) + strings.TrimSuffix(line, ",") + `]}`
	require.NoError(t, order.Validate([]byte(big)), "an order of 5,000 lines")
	require.ErrorContains(t, order.Validate([]byte(`{"id":"o-1","lines":[{"sku":"","quantity":0}]}`)), "/lines/0/")

	// Counting costs no allocation: it runs before every validation.
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(big))
	require.NoError(t, err)
	require.Zero(t, testing.AllocsPerRun(10, func() {
		w := work{left: MaxWork}
		w.apply(order.s, v)
	}))
}

// BenchmarkValidate: validating a 1 KiB order against a small schema, and the share of
// it spent counting the work first.
func BenchmarkValidate(b *testing.B) {
	order, err := Compile([]byte(`{"type":"object","required":["id","lines"],"properties":{"id":{"type":"string"},
		"lines":{"type":"array","items":{"type":"object","required":["sku","quantity"],"properties":{
			"sku":{"type":"string","minLength":1},"quantity":{"type":"integer","minimum":1},"price":{"type":"number"}}}}}}`))
	require.NoError(b, err)
	line := `{"sku":"SKU-1","quantity":2,"price":9.5},`
	doc := []byte(`{"id":"o-1","lines":[` + strings.Repeat(line, 24) + strings.TrimSuffix(line, ",") + `]}`)
	b.Run("validate", func(b *testing.B) {
		for b.Loop() {
			_ = order.Validate(doc)
		}
	})
	b.Run("general", func(b *testing.B) { // without the one-pass check
		g := general(order)
		for b.Loop() {
			_ = g.Validate(doc)
		}
	})
	// The built-in order.fulfilled's schema on the 1 KiB order consign bench publishes.
	var fulfilled *Schema
	for _, et := range consign.BuiltinEventTypes() {
		if et.Name == "order.fulfilled" {
			fulfilled, err = Compile(et.Schema)
			require.NoError(b, err)
		}
	}
	pad := strings.Repeat("x", 1024-len(benchOrder)-2)
	fdoc := []byte(benchOrder + pad + `"}`)
	require.NoError(b, general(fulfilled).Validate(fdoc))
	b.Run("order.fulfilled", func(b *testing.B) {
		for b.Loop() {
			_ = fulfilled.Validate(fdoc)
		}
	})
	b.Run("order.fulfilled-general", func(b *testing.B) {
		g := general(fulfilled)
		for b.Loop() {
			_ = g.Validate(fdoc)
		}
	})
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	require.NoError(b, err)
	b.Run("count-only", func(b *testing.B) {
		for b.Loop() {
			w := work{left: MaxWork}
			w.apply(order.s, v)
		}
	})
}

// benchOrder is the head of consign bench's order.fulfilled payload (internal/bench).
const benchOrder = `{"id":"ord_10442","name":"#10442","currency":"EUR","total":"129.90",` +
	`"lineItems":[{"id":"li_1","sku":"SKU-RED-M","quantity":2,"price":"39.95"},{"id":"li_2","sku":"SKU-BLU-L","quantity":1,"price":"50.00"}],` +
	`"fulfillments":[{"id":"ful_7","status":"success","tracking_company":"DHL","tracking_number":"JD014600006281234567","line_item_ids":["li_1","li_2"]}],` +
	`"bench":"consign","pad":"`
