package filter

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const order = `{"total": 750, "price": 12.5, "country": "US", "warehouse": {"id": "WH-7", "zone": 3},
	"tags": ["b2b", "eu"], "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 10}],
	"note": null, "paid": true, "big": 9007199254740993, "date": "2026-12-07"}`

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, filter string
		want         bool
	}{
		{"plain value is $eq", `{"payload": {"country": "US"}}`, true},
		{"plain value differs", `{"payload": {"country": "CA"}}`, false},
		{"type", `{"type": "order.created"}`, true},
		{"type prefix", `{"type": {"$prefix": "order."}}`, true},
		{"type prefix differs", `{"type": {"$prefix": "invoice."}}`, false},
		{"ordering key", `{"ordering_key": "ord_1"}`, true},
		{"spec example", `{"payload": {"total": {"$gte": 500}, "country": {"$in": ["US", "CA"]}}}`, true},
		{"spec example, total too low", `{"payload": {"total": {"$gte": 1000}, "country": {"$in": ["US", "CA"]}}}`, false},
		{"numbers compare numerically", `{"payload": {"total": {"$gt": 99}}}`, true},
		{"not as text: 750 > 1000 is false", `{"payload": {"total": {"$gt": 1000}}}`, false},
		{"integer equals float", `{"payload": {"total": 750.0}}`, true},
		{"float comparison", `{"payload": {"price": {"$lt": 12.51, "$gte": 12.5}}}`, true},
		{"exact above 2^53", `{"payload": {"big": 9007199254740993}}`, true},
		{"exact above 2^53, neighbour", `{"payload": {"big": 9007199254740992}}`, false},
		{"$lte equal", `{"payload": {"total": {"$lte": 750}}}`, true},
		{"$lt equal", `{"payload": {"total": {"$lt": 750}}}`, false},
		{"strings order by bytes", `{"payload": {"date": {"$gte": "2026-12-01", "$lt": "2027-01-01"}}}`, true},
		{"type mismatch: number vs string", `{"payload": {"total": {"$gt": "100"}}}`, false},
		{"type mismatch: string vs number", `{"payload": {"country": {"$gt": 1}}}`, false},
		{"type mismatch: $eq", `{"payload": {"total": "750"}}`, false},
		{"type mismatch: $gt on an object", `{"payload": {"warehouse": {"$gt": 1}}}`, false},
		{"type mismatch: $prefix on a number", `{"payload": {"total": {"$prefix": "7"}}}`, false},
		{"nested field", `{"payload": {"warehouse": {"id": "WH-7"}}}`, true},
		{"nested field differs", `{"payload": {"warehouse": {"id": "WH-8"}}}`, false},
		{"nested comparison", `{"payload": {"warehouse": {"zone": {"$in": [1, 3]}}}}`, true},
		{"$neq", `{"payload": {"country": {"$neq": "CA"}}}`, true},
		{"$neq same", `{"payload": {"country": {"$neq": "US"}}}`, false},
		{"$nin", `{"payload": {"country": {"$nin": ["CA", "MX"]}}}`, true},
		{"$nin in list", `{"payload": {"country": {"$nin": ["US"]}}}`, false},
		{"missing field fails $eq", `{"payload": {"vendor": "v1"}}`, false},
		{"missing field fails $gt", `{"payload": {"vendor": {"$gt": 0}}}`, false},
		{"missing field fails $in", `{"payload": {"vendor": {"$in": ["v1"]}}}`, false},
		{"missing field passes $neq", `{"payload": {"vendor": {"$neq": "v1"}}}`, true},
		{"missing field passes $nin", `{"payload": {"vendor": {"$nin": ["v1"]}}}`, true},
		{"missing nested field", `{"payload": {"vendor": {"id": "v1"}}}`, false},
		{"ordering key exists", `{"ordering_key": {"$exists": false}}`, false},
		{"$exists true", `{"payload": {"warehouse": {"$exists": true}}}`, true},
		{"$exists false", `{"payload": {"vendor": {"$exists": false}}}`, true},
		{"null is present", `{"payload": {"note": {"$exists": true}}}`, true},
		{"null equals null", `{"payload": {"note": null}}`, true},
		{"bool", `{"payload": {"paid": true}}`, true},
		{"array contains", `{"payload": {"tags": "b2b"}}`, true},
		{"array does not contain", `{"payload": {"tags": "retail"}}`, false},
		{"array equals whole", `{"payload": {"tags": ["b2b", "eu"]}}`, true},
		{"array in other order", `{"payload": {"tags": ["eu", "b2b"]}}`, false},
		{"array $in", `{"payload": {"tags": {"$in": ["retail", "eu"]}}}`, true},
		{"array $nin", `{"payload": {"tags": {"$nin": ["eu"]}}}`, false},
		{"array $prefix", `{"payload": {"tags": {"$prefix": "b2"}}}`, true},
		{"array of objects: any element", `{"payload": {"lines": {"sku": "B-2"}}}`, true},
		{"array of objects: none", `{"payload": {"lines": {"sku": "C-3"}}}`, false},
		{"array of objects: numeric", `{"payload": {"lines": {"qty": {"$gte": 10}}}}`, true},
		{"$or", `{"$or": [{"payload": {"country": "CA"}}, {"payload": {"total": {"$gt": 700}}}]}`, true},
		{"$or none", `{"$or": [{"payload": {"country": "CA"}}, {"type": "order.cancelled"}]}`, false},
		{"$and", `{"$and": [{"type": "order.created"}, {"payload": {"paid": true}}]}`, true},
		{"$and one fails", `{"$and": [{"type": "order.created"}, {"payload": {"paid": false}}]}`, false},
		{"$not at root", `{"$not": {"payload": {"country": "CA"}}}`, true},
		{"$not on a field", `{"payload": {"total": {"$not": {"$gt": 500}}}}`, false},
		{"$or inside payload", `{"payload": {"$or": [{"country": "CA"}, {"warehouse": {"zone": 3}}]}}`, true},
		{"$or on a field", `{"payload": {"country": {"$or": ["CA", {"$prefix": "U"}]}}}`, true},
		{"empty filter passes", `{}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Compile([]byte(tc.filter))
			require.NoError(t, err)
			d := &Doc{Type: "order.created", Payload: json.RawMessage(order), OrderingKey: "ord_1"}
			require.Equal(t, tc.want, f.Match(d), "%s on %s", tc.filter, order)
		})
	}
}

// TestMatchPayloadNotObject: a payload that is a scalar or array has no fields; a filter
// on its fields fails and one on the payload itself works.
func TestMatchPayloadNotObject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		payload, filter string
		want            bool
	}{
		{`42`, `{"payload": {"total": 1}}`, false},
		{`42`, `{"payload": {"$gt": 40}}`, true},
		{`"text"`, `{"payload": {"$prefix": "te"}}`, true},
		{`[1, 2]`, `{"payload": 2}`, true},
		{`[]`, `{"payload": {"a": {"$exists": false}}}`, true},
		{`{}`, `{"ordering_key": {"$exists": true}}`, false}, // the event has none
		{`{}`, `{"ordering_key": {"$neq": "k"}}`, true},
	} {
		f, err := Compile([]byte(tc.filter))
		require.NoError(t, err)
		require.Equal(t, tc.want, f.Match(&Doc{Type: "t", Payload: json.RawMessage(tc.payload)}), "%s on %s", tc.filter, tc.payload)
	}
}

// TestMatchSharesDecodedPayload: filters on the type only never decode the payload, and
// one Doc decodes it once for every filter.
func TestMatchSharesDecodedPayload(t *testing.T) {
	t.Parallel()
	byType, err := Compile([]byte(`{"type": "order.created"}`))
	require.NoError(t, err)
	d := &Doc{Type: "order.created", Payload: json.RawMessage(order)}
	require.True(t, byType.Match(d))
	require.False(t, d.decoded, "a filter on the type decoded the payload")
	byTotal, err := Compile([]byte(`{"payload": {"total": 750}}`))
	require.NoError(t, err)
	require.True(t, byTotal.Match(d))
	first := d.full
	require.True(t, byTotal.Match(d))
	require.Equal(t, first, d.full)
	var nilFilter *Filter
	require.True(t, nilFilter.Match(d), "no filter passes everything")
}

func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	deep := `{"payload": ` + strings.Repeat(`{"a": `, MaxDepth+1) + `1` + strings.Repeat(`}`, MaxDepth+2)
	for _, tc := range []struct {
		name, filter, want string
	}{
		{"not JSON", `{"payload": `, "is not valid JSON"},
		{"two values", `{} {}`, "more than one value"},
		{"not an object", `["payload"]`, "must be a JSON object"},
		{"unknown root field", `{"total": {"$gt": 1}}`, `at total: unknown field "total"`},
		{"unknown operator", `{"payload": {"total": {"$gtt": 1}}}`, `at payload.total.$gtt: unknown operator "$gtt"`},
		{"comparison at the root", `{"$eq": 1}`, `at $eq: $eq compares a field's value`},
		{"mixed operators and fields", `{"payload": {"total": {"$gt": 1, "currency": "EUR"}}}`, `at payload.total: mixes the operator $gt with the field "currency"`},
		{"$in not an array", `{"payload": {"country": {"$in": "US"}}}`, "at payload.country.$in: $in takes an array"},
		{"$nin not an array", `{"payload": {"country": {"$nin": 1}}}`, "at payload.country.$nin: $nin takes an array"},
		{"$gt takes number or string", `{"payload": {"total": {"$gt": true}}}`, "at payload.total.$gt: $gt takes a number or a string"},
		{"$lte with an array", `{"payload": {"total": {"$lte": [1]}}}`, "$lte takes a number or a string"},
		{"$exists not bool", `{"payload": {"total": {"$exists": 1}}}`, "at payload.total.$exists: $exists takes true or false"},
		{"$prefix not a string", `{"type": {"$prefix": 1}}`, "at type.$prefix: $prefix takes a string"},
		{"$or empty", `{"$or": []}`, "at $or: $or takes an array of 1 to"},
		{"$and not an array", `{"$and": {"type": "a"}}`, "at $and: $and takes an array"},
		{"$or element at root not an object", `{"$or": [1]}`, `at $or[0]: must be an object of conditions`},
		{"unknown field inside $or", `{"$or": [{"type": "a"}, {"total": 1}]}`, `at $or[1].total: unknown field "total"`},
		{"unknown operator inside nested $or", `{"payload": {"$or": [{"a": {"$regex": "x"}}]}}`, `at payload.$or[0].a.$regex: unknown operator "$regex"`},
		{"empty nested object", `{"payload": {"warehouse": {}}}`, "at payload.warehouse: an empty object names no condition"},
		{"too deep", deep, "nest more than 16 deep"},
		{"too large", `{"payload": {"a": "` + strings.Repeat("x", MaxBytes) + `"}}`, "a filter may have at most 16384"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Compile([]byte(tc.filter))
			require.Nil(t, f)
			require.ErrorContains(t, err, tc.want)
			var fe *Error
			require.ErrorAs(t, err, &fe)
		})
	}
}

func TestCompileAbsent(t *testing.T) {
	t.Parallel()
	for _, in := range []string{``, ` `, `null`, `{}`, " {\n} "} {
		f, err := Compile([]byte(in))
		require.NoError(t, err, "%q", in)
		require.Nil(t, f, "%q", in)
		n, err := Normalize([]byte(in))
		require.NoError(t, err)
		require.Nil(t, n)
	}
	n, err := Normalize([]byte("{ \"payload\" : {\n \"total\": {\"$gte\": 500} } }"))
	require.NoError(t, err)
	require.JSONEq(t, `{"payload":{"total":{"$gte":500}}}`, string(n))
	require.Equal(t, `{"payload":{"total":{"$gte":500}}}`, string(n))
}

// FuzzCompile: no input panics the parser or a compiled filter's evaluation, and every
// refusal is an *Error with a message.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`{"payload": {"total": {"$gte": 500}, "country": {"$in": ["US", "CA"]}}}`,
		`{"$or": [{"type": {"$prefix": "order."}}, {"$not": {"payload": {"lines": {"qty": {"$lt": 1e400}}}}}]}`,
		`{"payload": {"a": {"$and": [{"$exists": true}, {"$neq": null}, {"b": [1, {"c": 2}]}]}}}`,
		`{"ordering_key": {"$nin": ["x", 1, true, null, {}]}}`,
		`{"payload": {"x": {"$gt": -0.0e-5}}}`, `{}`, `null`, `[]`, `{"$eq": 1}`,
	} {
		f.Add([]byte(s), []byte(order))
	}
	f.Fuzz(func(t *testing.T, rule, payload []byte) {
		flt, err := Compile(rule)
		if err != nil {
			var fe *Error
			if !errorsAs(err, &fe) || fe.Msg == "" {
				t.Fatalf("Compile(%q) = %v, not an *Error with a message", rule, err)
			}
			return
		}
		d := &Doc{Type: "order.created", Payload: payload, OrderingKey: "k"}
		first := flt.Match(d)
		if again := flt.Match(d); again != first {
			t.Fatalf("Match not stable on %q: %v then %v", rule, first, again)
		}
		if _, err := Normalize(rule); err != nil {
			t.Fatalf("Normalize refused what Compile took: %q: %v", rule, err)
		}
	})
}

func errorsAs(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}
