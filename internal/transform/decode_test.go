package transform

import (
	"encoding/json"
	"testing"

	"github.com/dop251/goja"
	"github.com/stretchr/testify/require"
)

const order = `{"id":"ord_10442","name":"#10442","currency":"EUR","total":"129.90","lineItems":[{"id":"li_1","sku":"SKU-RED-M","quantity":2,"price":"39.95"},{"id":"li_2","sku":"SKU-BLU-L","quantity":1,"price":"50.00"}],"fulfillments":[{"id":"ful_7","status":"success","tracking_company":"DHL","tracking_number":"JD014600006281234567","line_item_ids":["li_1","li_2"]}],"bench":"consign","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`

// parseBoth returns what JSON.stringify makes of decode's value and of JSON.parse's.
func parseBoth(t testing.TB, doc string) (string, string, error) {
	rt := goja.New()
	js := rt.Get("JSON").ToObject(rt)
	parse, _ := goja.AssertFunction(js.Get("parse"))
	stringify, _ := goja.AssertFunction(js.Get("stringify"))
	want, err := parse(goja.Undefined(), rt.ToValue(doc))
	if err != nil {
		return "", "", err
	}
	got, err := decode(rt, []byte(doc))
	require.NoError(t, err, "%q", doc)
	a, err := stringify(goja.Undefined(), got)
	require.NoError(t, err)
	b, err := stringify(goja.Undefined(), want)
	require.NoError(t, err)
	return a.String(), b.String(), nil
}

func FuzzDecodeMatchesJSONParse(f *testing.F) {
	for _, s := range []string{order, `{"a":1,"2":[true,false,null],"b":{"c":-0.5e3}}`, `"h\u00e9\n"`, `[]`, `{}`, `-0`, `1e400`, `{"é":"ü\"x"}`, `{"a":1,"a":2}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if !json.Valid([]byte(doc)) {
			return
		}
		got, want, err := parseBoth(t, doc)
		if err != nil {
			return
		}
		require.Equal(t, want, got, "%q", doc)
	})
}

func BenchmarkDecode(b *testing.B) {
	rt := goja.New()
	for range b.N {
		if _, err := decode(rt, []byte(order)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONParse(b *testing.B) {
	rt := goja.New()
	js := rt.Get("JSON").ToObject(rt)
	parse, _ := goja.AssertFunction(js.Get("parse"))
	for range b.N {
		if _, err := parse(goja.Undefined(), rt.ToValue(order)); err != nil {
			b.Fatal(err)
		}
	}
}
