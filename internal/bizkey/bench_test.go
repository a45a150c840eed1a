package bizkey_test

import (
	"strings"
	"testing"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/bizkey"
	"github.com/consign-dev/consign/internal/filter"
)

// BenchmarkFromDoc is the cost of finding order.fulfilled's keys in a 1 KiB order at
// publish (an order id and a PO number), and with the line items' SKUs too.
func BenchmarkFromDoc(b *testing.B) {
	var keys []string
	for _, t := range consign.BuiltinEventTypes() {
		if t.Name == "order.fulfilled" {
			keys = t.Keys
		}
	}
	head := `{"order_id":"ORD-0001001","po_number":"PO-000100","lineItems":[{"sku":"SKU-0001","quantity":1},{"sku":"SKU-0010","quantity":2}],"total":"19.90","pad":"`
	payload := []byte(head + strings.Repeat("x", 1024-len(head)-2) + `"}`)
	for _, bb := range []struct {
		name string
		keys []string
		want int
	}{{"order.fulfilled", keys, 2}, {"with SKUs", append(keys, "/lineItems/*/sku"), 4}} {
		b.Run(bb.name, func(b *testing.B) {
			s, err := bizkey.Compile(bb.keys)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				if got := s.FromDoc(&filter.Doc{Payload: payload}); len(got) != bb.want {
					b.Fatal(got)
				}
			}
		})
	}
}
