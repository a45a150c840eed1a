package transform_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/transform"
)

func TestDowngrade(t *testing.T) {
	const in = `{"order_id":"o_1","amount":{"value":1250,"currency":"USD"}}`
	tests := []struct {
		name, code string
		want       string // JSON; "" expects an error
		err        string
	}{
		{"rename back", `function downgrade(p) { p.id = p.order_id; delete p.order_id; p.total = p.amount.value / 100; delete p.amount; return p }`,
			`{"id":"o_1","total":12.5}`, ""},
		{"a new value", `function downgrade(p) { return [p.order_id] }`, `["o_1"]`, ""},
		{"identity", `function downgrade(p) { return p }`, in, ""},
		{"throw", `function downgrade(p) { throw new Error("no amount") }`, "", "the downgrade threw: Error: no amount"},
		{"loop forever", `function downgrade(p) { for (;;) {} }`, "", "the downgrade ran longer than 50ms"},
		{"returns nothing", `function downgrade(p) { p.x = 1 }`, "", "the downgrade returned nothing"},
		{"returns a function", `function downgrade(p) { return function() {} }`, "", "has no JSON form"},
		{"throwing toJSON", `function downgrade(p) { return {toJSON() { throw new Error("toJSON") }} }`, "", "toJSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := transform.CompileDowngrade(tt.code)
			require.NoError(t, err)
			for range 2 { // the second run uses the pooled runtime (or a fresh one after a failure)
				got, err := s.Downgrade([]byte(in))
				if tt.want == "" {
					require.ErrorContains(t, err, tt.err)
					continue
				}
				require.NoError(t, err)
				require.JSONEq(t, tt.want, string(got))
			}
		})
	}
}

func TestDowngradeTimeoutIsErrTimeout(t *testing.T) {
	s, err := transform.CompileDowngrade(`function downgrade(p) { for (;;) {} }`)
	require.NoError(t, err)
	_, err = s.Downgrade([]byte(`{}`))
	require.True(t, errors.Is(err, transform.ErrTimeout), "%v", err)
}

func TestCompileDowngrade(t *testing.T) {
	tests := []struct{ name, code, err string }{
		{"empty", "", "is empty: define function downgrade(payload)"},
		{"syntax error", "function downgrade(p) { return p ", "does not compile"},
		{"a handler only", "function handler(w) { return w }", "defines no function downgrade"},
		{"top level throws", `throw new Error("boom"); function downgrade(p) { return p }`, "the downgrade threw: Error: boom"},
		{"too long", "function downgrade(p) { return p }//" + strings.Repeat("x", transform.MaxCode), "a downgrade may be at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := transform.CompileDowngrade(tt.code)
			require.ErrorContains(t, err, tt.err)
		})
	}
	// Code that defines both functions is two scripts, each calling its own.
	both := `function handler(w) { w.payload = "h"; return w } function downgrade(p) { return "d" }`
	d, err := transform.CompileDowngrade(both)
	require.NoError(t, err)
	h, err := transform.Compile(both)
	require.NoError(t, err)
	got, err := d.Downgrade([]byte(`{}`))
	require.NoError(t, err)
	require.Equal(t, `"d"`, string(got))
	w, err := h.Run(input(), nil)
	require.NoError(t, err)
	require.Equal(t, `"h"`, string(w.Payload))
	_, err = h.Downgrade([]byte(`{}`))
	require.ErrorContains(t, err, "not a downgrade")
}

func FuzzDowngrade(f *testing.F) {
	f.Add(`function downgrade(p) { return p }`, `{"a":1}`)
	f.Add(`function downgrade(p) { p.b = p.a; delete p.a; return p }`, `{"a":[1,{"b":null}]}`)
	f.Fuzz(func(t *testing.T, code, payload string) {
		if !json.Valid([]byte(payload)) {
			return
		}
		s, err := transform.CompileDowngrade(code)
		if err != nil {
			return
		}
		if out, err := s.Downgrade([]byte(payload)); err == nil {
			require.True(t, json.Valid(out), "the payload out is JSON")
		}
	})
}
