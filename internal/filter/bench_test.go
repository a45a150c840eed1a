package filter

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// orderPayload is a 1 KiB order such as a shop sends: a few scalars, a customer, an
// address and line items.
func orderPayload() json.RawMessage {
	var lines []string
	for i := 0; i < 7; i++ {
		lines = append(lines, fmt.Sprintf(`{"sku": "SKU-%04d", "title": "Cotton t-shirt, size M", "qty": %d, "price": "19.90"}`, i, i+1))
	}
	p := `{"id": "ord_2Q7x9LmK3vTn", "number": 10451, "total": 750, "currency": "USD", "country": "US",
	"status": "paid", "created_at": "2026-12-07T07:40:00Z",
	"customer": {"id": "cus_81Kd", "email": "ada@example.com", "name": "Ada Lovelace", "tags": ["b2b", "vip"]},
	"shipping_address": {"line1": "1 Loop Rd", "city": "Springfield", "zip": "12345", "country": "US"},
	"lines": [` + strings.Join(lines, ", ") + `], "note": "leave at the door"}`
	return json.RawMessage(p)
}

// BenchmarkMatchOrder: one filter on two top-level fields of a 1 KiB order, a fresh Doc
// per event as fan-out makes it.
func BenchmarkMatchOrder(b *testing.B) {
	payload := orderPayload()
	if len(payload) < 900 || len(payload) > 1200 {
		b.Fatalf("payload is %d bytes, not about 1 KiB", len(payload))
	}
	for _, bc := range []struct{ name, filter string }{
		{"fields", `{"payload": {"total": {"$gte": 500}, "country": {"$in": ["US", "CA"]}}}`},
		{"nested", `{"payload": {"customer": {"tags": "b2b"}}}`},
		{"type", `{"type": {"$prefix": "order."}}`},
	} {
		f, err := Compile([]byte(bc.filter))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for i := 0; i < b.N; i++ {
				d := Doc{Type: "order.created", Payload: payload}
				if !f.Match(&d) {
					b.Fatal("filter turned the order away")
				}
			}
		})
	}
}
