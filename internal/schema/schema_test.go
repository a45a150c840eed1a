package schema

import (
	"testing"

	"github.com/stretchr/testify/require"
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
