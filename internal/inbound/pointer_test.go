package inbound_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/inbound"
)

// rfc6901 is the example document of RFC 6901, section 5.
const rfc6901 = `{
  "foo": ["bar", "baz"],
  "": 0,
  "a/b": 1,
  "c%d": 2,
  "e^f": 3,
  "g|h": 4,
  "i\\j": 5,
  "k\"l": 6,
  " ": 7,
  "m~n": 8
}`

func TestPointerRFC6901(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ptr, want string // want "" = absent
	}{
		{"/foo", `["bar", "baz"]`},
		{"/foo/0", `"bar"`},
		{"/", `0`},
		{"/a~1b", `1`},
		{"/c%d", `2`},
		{"/e^f", `3`},
		{"/g|h", `4`},
		{"/i\\j", `5`},
		{"/k\"l", `6`},
		{"/ ", `7`},
		{"/m~0n", `8`},
		{"/foo/1", `"baz"`},
		{"/foo/2", ""},
		{"/foo/-", ""},
		{"/foo/01", ""},
		{"/foo/0/x", ""},
		{"/nope", ""},
		{"/m~n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ptr, func(t *testing.T) {
			t.Parallel()
			p, err := inbound.ParsePointer(tt.ptr)
			if tt.ptr == "/m~n" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			got, ok := p.Lookup([]byte(rfc6901))
			if tt.want == "" {
				require.False(t, ok, "got %s", got)
				return
			}
			require.True(t, ok)
			require.Equal(t, tt.want, string(got), "values are returned exactly as written")
		})
	}
	whole, err := inbound.ParsePointer("")
	require.NoError(t, err)
	got, ok := whole.Lookup([]byte(" [1, 2] "))
	require.True(t, ok)
	require.Equal(t, "[1, 2]", string(got))
	_, err = inbound.ParsePointer("id")
	require.ErrorContains(t, err, `must start with "/"`)
	tilde, err := inbound.ParsePointer("/~01")
	require.NoError(t, err)
	require.Equal(t, inbound.Pointer{"~1"}, tilde, `"~01" is "~1", not "/"`)
}

func TestKeyOf(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, want string }{
		{`"shp_1"`, "shp_1"},
		{`"  padded "`, "padded"},
		{`3`, "3"},
		{`3.50`, "3.50"},
		{`true`, "true"},
		{`{"a": 1,  "b": [1, 2]}`, `{"a":1,"b":[1,2]}`},
		{`null`, ""},
		{`""`, ""},
		{`"` + strings.Repeat("x", 300) + `"`, "sha256:"},
		{`"tab\there"`, "sha256:"},
	}
	for _, tt := range tests {
		got := inbound.KeyOf(json.RawMessage(tt.raw))
		if strings.HasSuffix(tt.want, ":") {
			require.True(t, strings.HasPrefix(got, tt.want), "%s: %s", tt.raw, got)
			require.Len(t, got, len("sha256:")+64)
			continue
		}
		require.Equal(t, tt.want, got, tt.raw)
	}
	require.Equal(t, inbound.KeyOf(json.RawMessage(`7`)), inbound.KeyOf(json.RawMessage(`"7"`)),
		"a number id and its string are one key: providers mix them between webhooks and lists")
}

// FuzzJSONPointer: any pointer over any JSON document is handled without panic, and
// what it finds is valid JSON.
func FuzzJSONPointer(f *testing.F) {
	f.Add("/foo/0", rfc6901)
	f.Add("/data/1/id", `{"data":[{"id":1},{"id":"2"}]}`)
	f.Add("/~", `{}`)
	f.Add("/0/0/0", `[[[null]]]`)
	f.Add("/a", `"a"`)
	f.Fuzz(func(t *testing.T, ptr, doc string) {
		p, err := inbound.ParsePointer(ptr)
		if err != nil || !json.Valid([]byte(doc)) {
			return
		}
		v, ok := p.Lookup([]byte(doc))
		if ok {
			require.True(t, json.Valid(v), "pointer %q in %q found %q", ptr, doc, v)
			_ = inbound.KeyOf(v)
		}
	})
}
