package transform_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/sender"
	"github.com/consign-dev/consign/internal/transform"
)

func input() *transform.Webhook {
	return &transform.Webhook{Type: "order.created", Payload: json.RawMessage(`{"id":"o_1","total":12.5}`),
		URL: "https://partner.example.com/hooks", Method: "POST", Headers: map[string]string{"X-Shop": "a"}}
}

// checkURL is the production rule for endpoint URLs without --insecure-targets.
func checkURL(raw string) error { return sender.ValidateTargetURL(raw, false) }

func TestRun(t *testing.T) {
	tests := []struct {
		name string
		code string
		want *transform.Webhook // nil: expect an error
		err  string
	}{
		{"identity", `function handler(webhook) { return webhook }`, input(), ""},
		{"rename a field",
			`function handler(w) { w.payload.order_id = w.payload.id; delete w.payload.id; return w }`,
			&transform.Webhook{Type: "order.created", Payload: json.RawMessage(`{"total":12.5,"order_id":"o_1"}`),
				URL: "https://partner.example.com/hooks", Method: "POST", Headers: map[string]string{"X-Shop": "a"}}, ""},
		{"url, method and headers",
			`function handler(w) { w.url = w.url + "/" + w.type; w.method = "put"; w.headers["x-kind"] = w.type; return w }`,
			&transform.Webhook{Type: "order.created", Payload: json.RawMessage(`{"id":"o_1","total":12.5}`),
				URL: "https://partner.example.com/hooks/order.created", Method: "PUT",
				Headers: map[string]string{"X-Shop": "a", "X-Kind": "order.created"}}, ""},
		{"a new object", `function handler(w) { return {payload: [1, 2], url: w.url, method: "POST"} }`,
			&transform.Webhook{Type: "order.created", Payload: json.RawMessage(`[1,2]`),
				URL: "https://partner.example.com/hooks", Method: "POST", Headers: map[string]string{}}, ""},
		{"cancel", `function handler(w) { w.cancel = w.payload.total < 100; return w }`,
			&transform.Webhook{Type: "order.created", Cancel: true}, ""},
		{"throw", `function handler(w) { throw new Error("no total") }`, nil, "the transformation threw: Error: no total"},
		{"loop forever", `function handler(w) { for (;;) {} }`, nil, "ran longer than 50ms"},
		{"returns nothing", `function handler(w) { w.payload = {} }`, nil, "the handler returned nothing"},
		{"returns a string", `function handler(w) { return "x" }`, nil, `returned the string "x", not the webhook object`},
		{"returns an array", `function handler(w) { return [w] }`, nil, "returned an array"},
		{"no payload", `function handler(w) { delete w.payload; return w }`, nil, "has no payload"},
		{"payload a function", `function handler(w) { w.payload = function() {}; return w }`, nil, "has no JSON form"},
		{"url a number", `function handler(w) { w.url = 5; return w }`, nil, "webhook.url is the number 5"},
		{"private url", `function handler(w) { w.url = "http://127.0.0.1:8080/x"; return w }`, nil, `webhook.url "http://127.0.0.1:8080/x"`},
		{"metadata url", `function handler(w) { w.url = "https://169.254.169.254/latest"; return w }`, nil, "webhook.url"},
		{"bad method", `function handler(w) { w.method = "DELETE"; return w }`, nil, `webhook.method is "DELETE"`},
		{"reserved header", `function handler(w) { w.headers["Webhook-Signature"] = "v1,x"; return w }`, nil, "is set by Consign"},
		{"header not a string", `function handler(w) { w.headers.n = 1; return w }`, nil, `webhook.headers["n"] is the number 1`},
		{"header with a newline", `function handler(w) { w.headers.x = "a\nb"; return w }`, nil, "control character"},
		// Under the race detector building 1 MB may use the 50 ms first: either is clear.
		{"huge payload", `function handler(w) { w.payload = "x".repeat(1100000); return w }`, nil, "bytes as JSON; at most|ran longer than 50ms"},
		// A sparse array written out in full would be 5 GB: the walk stops past MaxPayload.
		{"huge sparse array", `function handler(w) { w.payload = new Array(1e9); return w }`, nil, "more than 1048576 bytes as JSON; at most 1048576"},
		{"throwing getter", `function handler(w) { return {get payload() { throw new Error("getter") }} }`, nil, "getter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := transform.Compile(tt.code)
			require.NoError(t, err)
			for range 2 { // the second run uses the pooled runtime (or a fresh one after a failure)
				got, err := s.Run(input(), checkURL)
				if tt.want == nil {
					require.Error(t, err)
					require.True(t, slices.ContainsFunc(strings.Split(tt.err, "|"), func(want string) bool {
						return strings.Contains(err.Error(), want)
					}), "%q does not say %q", err, tt.err)
					continue
				}
				require.NoError(t, err)
				if tt.want.Cancel {
					require.True(t, got.Cancel)
					continue
				}
				require.JSONEq(t, string(tt.want.Payload), string(got.Payload))
				want := *tt.want
				want.Payload, got.Payload = nil, nil
				require.Equal(t, &want, got)
			}
		})
	}
}

func TestTimeoutIsBounded(t *testing.T) {
	s, err := transform.Compile(`function handler(w) { while (true) { w.payload.x = (w.payload.x || 0) + 1 } }`)
	require.NoError(t, err)
	start := time.Now()
	_, err = s.Run(input(), nil)
	require.True(t, errors.Is(err, transform.ErrTimeout), "%v", err)
	// 50 ms of CPU; a machine too busy to give it that is cut at 1 s of wall time.
	require.Less(t, time.Since(start), 1500*time.Millisecond)
}

func TestCompile(t *testing.T) {
	tests := []struct{ name, code, err string }{
		{"empty", "  ", "is empty"},
		{"syntax error", "function handler(w) { return w ", "does not compile"},
		{"no handler", "function other(w) { return w }", "defines no function handler"},
		{"handler not a function", "var handler = 5", "defines no function handler"},
		{"top level throws", `throw new Error("boom"); function handler(w) { return w }`, "boom"},
		{"top level loops", `for (;;) {}`, "ran longer than"},
		{"too long", "function handler(w) { return w }//" + strings.Repeat("x", transform.MaxCode), "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := transform.Compile(tt.code)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.err)
		})
	}
	a, err := transform.Compile("function handler(w) { return w }")
	require.NoError(t, err)
	b, err := transform.Compile("function handler(w) { return w }")
	require.NoError(t, err)
	require.Same(t, a, b, "the same code is compiled once")
}

func TestGlobalsDoNotLeakBetweenScripts(t *testing.T) {
	a, err := transform.Compile(`var seen = 0; function handler(w) { seen++; w.payload = {seen: seen}; return w }`)
	require.NoError(t, err)
	b, err := transform.Compile(`function handler(w) { w.payload = {seen: typeof seen}; return w }`)
	require.NoError(t, err)
	_, err = a.Run(input(), nil)
	require.NoError(t, err)
	got, err := b.Run(input(), nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"seen":"undefined"}`, string(got.Payload))
}

func BenchmarkRun(b *testing.B) {
	s, err := transform.Compile(`function handler(w) { w.payload.order_id = w.payload.id; delete w.payload.id; w.headers["X-Kind"] = w.type; return w }`)
	require.NoError(b, err)
	in := input()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Run(in, checkURL); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzCompileRun(f *testing.F) {
	f.Add(`function handler(w) { return w }`, `{"a":1}`)
	f.Add(`function handler(w) { w.payload = w.payload.a; return w }`, `{"a":[1,{"b":null}]}`)
	f.Fuzz(func(t *testing.T, code, payload string) {
		if !json.Valid([]byte(payload)) {
			return
		}
		s, err := transform.Compile(code)
		if err != nil {
			return
		}
		in := input()
		in.Payload = json.RawMessage(payload)
		if out, err := s.Run(in, checkURL); err == nil && !out.Cancel {
			require.True(t, json.Valid(out.Payload), "the payload out is JSON")
		}
	})
}
