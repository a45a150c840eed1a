package bizkey_test

import (
	"strings"
	"testing"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/bizkey"
	"github.com/consign-dev/consign/internal/filter"
	"github.com/consign-dev/consign/internal/schema"
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

// BenchmarkCheck is a publish's check of a 1 KiB order.fulfilled payload: its schema and
// its keys, the keys found by a second read of the payload (FromDoc) or from the members
// the schema's own pass cut out (FromFields).
func BenchmarkCheck(b *testing.B) {
	var of consign.EventType
	for _, t := range consign.BuiltinEventTypes() {
		if t.Name == "order.fulfilled" {
			of = t
		}
	}
	sch, err := schema.Compile(of.Schema)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := bizkey.Compile(of.Keys)
	if err != nil {
		b.Fatal(err)
	}
	head := `{"id":"ord_10442","name":"#10442","currency":"EUR","total":"129.90","lineItems":[{"id":"li_1","sku":"SKU-RED-M","quantity":2}],"pad":"`
	payload := []byte(head + strings.Repeat("x", 1024-len(head)-2) + `"}`)
	b.Run("Validate+FromDoc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := sch.Validate(payload); err != nil {
				b.Fatal(err)
			}
			if got := keys.FromDoc(&filter.Doc{Payload: payload}); len(got) != 1 {
				b.Fatal(got)
			}
		}
	})
	b.Run("ValidateFields+FromFields", func(b *testing.B) {
		b.ReportAllocs()
		fields := make([][]byte, len(keys.Tops()))
		for b.Loop() {
			if noted, err := sch.ValidateFields(payload, keys.Tops(), fields); !noted || err != nil {
				b.Fatal(noted, err)
			}
			if got := keys.FromFields(fields); len(got) != 1 {
				b.Fatal(got)
			}
		}
	})
}
