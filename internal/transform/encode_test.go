package transform

import (
	"testing"
	"time"

	"github.com/dop251/goja"
	"github.com/stretchr/testify/require"
)

// encodeBoth evaluates the expression src and returns encode's JSON of its value (ok:
// whether encode walked it itself) and JSON.stringify's; skip: src does not evaluate.
// Each side gets its own runtime, so that code with state (a getter counting its calls)
// gives both the same value.
func encodeBoth(t testing.TB, src string) (got string, ok bool, want string, undef, skip bool) {
	eval := func() (*goja.Runtime, goja.Value) {
		rt := goja.New()
		timer := time.AfterFunc(100*time.Millisecond, func() { rt.Interrupt("too long") })
		defer timer.Stop()
		val, err := rt.RunString("(" + src + "\n)")
		if err != nil {
			return nil, nil
		}
		return rt, val
	}
	rt, val := eval()
	if rt == nil {
		return "", false, "", false, true
	}
	var b []byte
	func() {
		defer func() {
			if r := recover(); r != nil {
				skip = true // a getter that throws
			}
		}()
		b, ok = encode(nil, val)
	}()
	if skip || ok && len(b) > MaxPayload {
		return "", false, "", false, true // stopped early, as it should
	}
	rt, val = eval()
	js := rt.Get("JSON").ToObject(rt)
	stringify, _ := goja.AssertFunction(js.Get("stringify"))
	w, err := stringify(goja.Undefined(), val)
	if err != nil {
		return "", false, "", false, true // a cycle, a BigInt, a throwing getter
	}
	return string(b), ok, w.String(), goja.IsUndefined(w), false
}

func TestEncode(t *testing.T) {
	for _, c := range []struct {
		src    string
		walked bool // encode writes it itself, without JSON.stringify
	}{
		{order, true},
		{`{a: 1, b: undefined, c: function() {}, d: Symbol("s"), e: [undefined, function() {}, NaN, -Infinity, -0, 1e21, 0.1, 5e-7]}`, true},
		{`{"é": "ü\"\\\n\t\b\f\r\u0001\u001f\u007f", "\ud83d\ude00": "\ud83d\ude00", lone: "\ud800x\udc00"}`, true},
		{`[null, true, false, "", {}, [], [[1]], {x: {y: {}}}]`, true},
		{`Object.assign(Object.create(null), {b: 2, a: 1, 1: 0})`, true},
		{`{get g() { return [1, 2] }}`, true},
		{`Object.defineProperty({a: 1}, "hidden", {value: 2, enumerable: false})`, true},
		{`(function() { var a = [1, 2]; a.length = 4; a.x = 5; return a })()`, true},
		{`{d: new Date(0)}`, false},
		{`{t: {toJSON: function(k) { return "key " + k }}}`, false},
		{`{n: new Number(3), s: new String("s"), b: new Boolean(false)}`, false},
		{`new Proxy([1, 2], {})`, false},
		{`{m: new Map([[1, 2]]), r: /x/, e: new Error("e")}`, false},
		{`undefined`, false},
		{`function() {}`, false},
		{`"top"`, true},
		{`12.5`, true},
		{`null`, true},
		{`{get a() { return this.n = (this.n || 0) + 1 }, get b() { return this.n }}`, true},
	} {
		t.Run(c.src[:min(len(c.src), 30)], func(t *testing.T) {
			got, ok, want, undef, skip := encodeBoth(t, c.src)
			require.False(t, skip)
			require.Equal(t, c.walked, ok, "walked by encode")
			if ok {
				require.False(t, undef)
				require.Equal(t, want, got)
			}
		})
	}
}

func FuzzEncodeMatchesJSONStringify(f *testing.F) {
	for _, s := range []string{order, `{a: [1, , 3], b: "\ud800", c: 1/3, d: -1e-7, e: 2**53 + 2}`, `{x: undefined, y: [undefined]}`,
		`{"\ud800": 1}`, `new Proxy({a: 1}, {})`, `{toJSON() { return 1 }}`, `{a: {b: {c: [{}, []]}}}`, `[0x10, 1e300 * 10, "\u2028"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		got, ok, want, undef, skip := encodeBoth(t, src)
		if skip || !ok {
			return
		}
		require.False(t, undef, "%q: encode wrote %s where JSON.stringify gives undefined", src, got)
		require.Equal(t, want, got, "%q", src)
	})
}

func BenchmarkEncode(b *testing.B) {
	rt := goja.New()
	v, err := decode(rt, []byte(order))
	require.NoError(b, err)
	var buf []byte
	for range b.N {
		buf, _ = encode(buf[:0], v)
	}
}

func BenchmarkJSONStringify(b *testing.B) {
	rt := goja.New()
	v, err := decode(rt, []byte(order))
	require.NoError(b, err)
	js := rt.Get("JSON").ToObject(rt)
	stringify, _ := goja.AssertFunction(js.Get("stringify"))
	for range b.N {
		if _, err := stringify(goja.Undefined(), v); err != nil {
			b.Fatal(err)
		}
	}
}
