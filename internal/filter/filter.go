// Package filter decides whether an event goes to an endpoint, by the endpoint's filter:
// JSON rules over the document {"type", "payload", "ordering_key"} in the operator style
// Convoy and Outpost users know.
//
// Design: a filter is compiled once, when the endpoint is created or changed, into a tree
// of small nodes (a field step, a comparison, $and/$or/$not); fan-out keeps the compiled
// tree with the endpoint and evaluates it per event. Of the event's payload only the
// top-level fields some filter names are decoded, once per event for every filter (Doc).
// A malformed rule is refused at compile time with the path and the operator at fault,
// so nothing fails at fan-out.
//
// The rules:
//   - An object's keys are field names (a step into that field) or operators. A plain
//     value means $eq. Field names are literal: "a.b" is the key "a.b", not a path.
//   - Comparisons: $eq $neq $gt $gte $lt $lte $in $nin $exists $prefix; logic: $and $or
//     (a non-empty array of conditions) and $not (one condition), at any level.
//   - Numbers compare numerically (1 equals 1.0), strings by bytes; $gt and the like
//     between a number and a string, or on any other type, are false.
//   - A missing field fails every comparison except $neq, $nin (the negations of $eq and
//     $in) and {"$exists": false}.
//   - An array matches when any element does ({"tags": "b2b"} holds for ["b2b", "eu"]),
//     and $eq also takes the whole array; a field step into an array of objects looks
//     into each element.
package filter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Bounds on a filter: its size in bytes of JSON, and how deep conditions nest.
const (
	MaxBytes = 16 << 10
	MaxDepth = 16
	// MaxList bounds the conditions of an $and or $or and the values of an $in or $nin.
	MaxList = 1000
)

// Fields of the document a filter sees.
var rootFields = []string{"type", "payload", "ordering_key"}

// Error is a malformed filter: where (a path such as payload.total, or $or[1].type) and
// what is wrong.
type Error struct {
	Path string
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return "at " + e.Path + ": " + e.Msg
}

// Filter is a compiled filter; safe for concurrent use.
type Filter struct {
	root node
}

// Doc is what a filter sees of one event. The payload is looked at the first time a
// filter looks into it and shared by every filter evaluated on the same Doc; a Doc is
// not safe for concurrent use.
//
// A payload that is one valid JSON object (what ingest takes) is not decoded whole: one
// pass checks it and notes where its top-level fields are, and a field step decodes the
// named field's value only, once per Doc. The whole object is decoded only when a
// rule compares the payload itself as a value ({"payload": {"$eq": {...}}}). Any other
// payload (an array, a scalar, bytes that are not JSON) is decoded whole as before, so
// evaluation means the same either way.
type Doc struct {
	Type        string
	Payload     json.RawMessage
	OrderingKey string

	decoded bool // the payload was looked at: full and ok are set
	ok      bool // the payload decodes (else it is missing)
	full    any  // *object for a valid JSON object, else the decoded value
}

// field is the document's field key, as a filter steps into it at the root.
func (d *Doc) field(key string) (any, bool) {
	switch key {
	case "type":
		return d.Type, true
	case "ordering_key":
		return d.OrderingKey, d.OrderingKey != ""
	case "payload":
		if !d.decoded {
			d.decoded = true
			d.full, d.ok = decodePayload(d.Payload)
		}
		return d.full, d.ok
	}
	return nil, false
}

// decodePayload: a lazy *object for a valid JSON object, else the first JSON value of
// the bytes as encoding/json decodes it (ok false when it does not).
func decodePayload(raw []byte) (any, bool) {
	if lazyIndex {
		if o := index(raw); o != nil {
			return o, true
		}
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return nil, false
	}
	return v, true
}

// Match reports whether the event passes the filter. A nil Filter passes everything.
func (f *Filter) Match(d *Doc) bool {
	if f == nil {
		return true
	}
	// The root's conditions are field steps (type, payload, ordering_key) and logic, and
	// fieldNode reads them from the Doc: a filter of type and ordering key decodes nothing.
	return f.root.eval(d, true)
}

// Compile parses a filter. An absent filter (empty, null or {}) compiles to nil, which
// passes every event. A malformed one returns an *Error.
func Compile(raw []byte) (*Filter, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if len(raw) > MaxBytes {
		return nil, &Error{Msg: fmt.Sprintf("is %d bytes; a filter may have at most %d", len(raw), MaxBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &Error{Msg: "is not valid JSON: " + err.Error()}
	}
	if dec.More() {
		return nil, &Error{Msg: "is not valid JSON: more than one value"}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &Error{Msg: `must be a JSON object such as {"payload": {"total": {"$gte": 500}}}`}
	}
	if len(obj) == 0 {
		return nil, nil
	}
	c := &compiler{}
	n, err := c.object(obj, "", 0, true)
	if err != nil {
		return nil, err
	}
	return &Filter{root: n}, nil
}

// Normalize compiles raw and returns it compacted, or nil when it is absent (empty, null
// or {}), so that what is stored and shown is what was checked.
func Normalize(raw []byte) (json.RawMessage, error) {
	f, err := Compile(raw)
	if err != nil || f == nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Compact(&b, bytes.TrimSpace(raw)); err != nil {
		return nil, &Error{Msg: "is not valid JSON: " + err.Error()}
	}
	return b.Bytes(), nil
}

// A node is a compiled condition on a value; present is false when the field is missing.
type node interface {
	eval(v any, present bool) bool
}

type compiler struct{}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// comparisons are the operators that test the value at their path.
var comparisons = []string{"$eq", "$neq", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$prefix"}

func knownOperators() string {
	return strings.Join(append(slices.Clone(comparisons), "$and", "$or", "$not"), " ")
}

// cond compiles a condition on the value at path: a plain value ($eq) or an object.
func (c *compiler) cond(v any, path string, depth int) (node, error) {
	if depth > MaxDepth {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("conditions nest more than %d deep", MaxDepth)}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return eqNode{want: v}, nil
	}
	if len(obj) == 0 {
		return nil, &Error{Path: path, Msg: `an empty object names no condition; use {"$exists": true}, or {"$eq": {}} for an empty object`}
	}
	return c.object(obj, path, depth, false)
}

// object compiles an object of field names and operators, all of which must hold. At
// the root, fields are those of the document and comparisons make no sense.
func (c *compiler) object(obj map[string]any, path string, depth int, root bool) (node, error) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys) // errors and evaluation in a stable order
	var all andNode
	var fields, ops []string
	for _, k := range keys {
		v := obj[k]
		if !strings.HasPrefix(k, "$") {
			if root && !slices.Contains(rootFields, k) {
				return nil, &Error{Path: join(path, k), Msg: fmt.Sprintf(`unknown field %q: a filter's fields are "type", "payload" and "ordering_key" (payload fields go inside "payload")`, k)}
			}
			fields = append(fields, k)
			n, err := c.cond(v, join(path, k), depth+1)
			if err != nil {
				return nil, err
			}
			all = append(all, fieldNode{key: k, cond: n})
			continue
		}
		opPath := join(path, k)
		switch k {
		case "$and", "$or":
			list, ok := v.([]any)
			if !ok || len(list) == 0 || len(list) > MaxList {
				return nil, &Error{Path: opPath, Msg: fmt.Sprintf("%s takes an array of 1 to %d conditions", k, MaxList)}
			}
			var ns []node
			for i, e := range list {
				p := fmt.Sprintf("%s[%d]", opPath, i)
				n, err := c.sub(e, p, depth, root)
				if err != nil {
					return nil, err
				}
				ns = append(ns, n)
			}
			if k == "$and" {
				all = append(all, andNode(ns))
			} else {
				all = append(all, orNode(ns))
			}
		case "$not":
			n, err := c.sub(v, opPath, depth, root)
			if err != nil {
				return nil, err
			}
			all = append(all, notNode{n})
		default:
			if !slices.Contains(comparisons, k) {
				return nil, &Error{Path: opPath, Msg: fmt.Sprintf("unknown operator %q; the operators are %s", k, knownOperators())}
			}
			if root {
				return nil, &Error{Path: opPath, Msg: fmt.Sprintf(`%s compares a field's value: put it under a field, such as {"payload": {"total": {%q: …}}}`, k, k)}
			}
			ops = append(ops, k)
			n, err := compare(k, v, opPath)
			if err != nil {
				return nil, err
			}
			all = append(all, n)
		}
	}
	if len(fields) > 0 && len(ops) > 0 {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("mixes the operator %s with the field %q: put field conditions and comparisons in separate objects (inside $and if need be)", ops[0], fields[0])}
	}
	if len(all) == 1 {
		return all[0], nil
	}
	return all, nil
}

// sub compiles an operand of $and, $or or $not, found at path at: a condition on the
// same value as the object it is in (at the root, an object of document fields). Paths
// within it go through the operator, such as payload.$or[1].country.
func (c *compiler) sub(v any, at string, depth int, root bool) (node, error) {
	if depth+1 > MaxDepth {
		return nil, &Error{Path: at, Msg: fmt.Sprintf("conditions nest more than %d deep", MaxDepth)}
	}
	if root {
		obj, ok := v.(map[string]any)
		if !ok || len(obj) == 0 {
			return nil, &Error{Path: at, Msg: `must be an object of conditions on "type", "payload" or "ordering_key"`}
		}
		return c.object(obj, at, depth+1, true)
	}
	return c.cond(v, at, depth+1)
}

// compare compiles a comparison operator with its operand.
func compare(op string, v any, path string) (node, error) {
	switch op {
	case "$eq":
		return eqNode{want: v}, nil
	case "$neq":
		return notNode{eqNode{want: v}}, nil
	case "$in", "$nin":
		list, ok := v.([]any)
		if !ok || len(list) > MaxList {
			return nil, &Error{Path: path, Msg: fmt.Sprintf("%s takes an array of at most %d values", op, MaxList)}
		}
		n := inNode(list)
		if op == "$nin" {
			return notNode{n}, nil
		}
		return n, nil
	case "$exists":
		b, ok := v.(bool)
		if !ok {
			return nil, &Error{Path: path, Msg: "$exists takes true or false"}
		}
		return existsNode(b), nil
	case "$prefix":
		s, ok := v.(string)
		if !ok {
			return nil, &Error{Path: path, Msg: "$prefix takes a string"}
		}
		return prefixNode(s), nil
	default: // $gt $gte $lt $lte
		n := orderNode{op: op}
		switch x := v.(type) {
		case json.Number:
			num, err := parseNumber(x)
			if err != nil {
				return nil, &Error{Path: path, Msg: fmt.Sprintf("%s: %s is not a number this filter can compare", op, x)}
			}
			n.num, n.isNum = num, true
		case string:
			n.str = x
		default:
			return nil, &Error{Path: path, Msg: fmt.Sprintf("%s takes a number or a string", op)}
		}
		return n, nil
	}
}

type andNode []node

func (n andNode) eval(v any, present bool) bool {
	for _, c := range n {
		if !c.eval(v, present) {
			return false
		}
	}
	return true
}

type orNode []node

func (n orNode) eval(v any, present bool) bool {
	for _, c := range n {
		if c.eval(v, present) {
			return true
		}
	}
	return false
}

type notNode struct{ n node }

func (n notNode) eval(v any, present bool) bool { return !n.n.eval(v, present) }

// fieldNode steps into a field of an object, or of each object of an array.
type fieldNode struct {
	key  string
	cond node
}

func (n fieldNode) eval(v any, present bool) bool {
	if present {
		switch x := v.(type) {
		case *Doc:
			c, ok := x.field(n.key)
			return n.cond.eval(c, ok)
		case *object:
			c, ok := x.field(n.key)
			return n.cond.eval(c, ok)
		case map[string]any:
			c, ok := x[n.key]
			return n.cond.eval(c, ok)
		case []any:
			if len(x) > 0 {
				for _, e := range x {
					if n.eval(e, true) {
						return true
					}
				}
				return false
			}
		}
	}
	return n.cond.eval(nil, false)
}

type existsNode bool

func (n existsNode) eval(_ any, present bool) bool { return present == bool(n) }

type eqNode struct{ want any }

func (n eqNode) eval(v any, present bool) bool {
	if !present {
		return false
	}
	v = whole(v)
	if equal(v, n.want) {
		return true
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if equal(e, n.want) {
				return true
			}
		}
	}
	return false
}

type inNode []any

func (n inNode) eval(v any, present bool) bool {
	for _, w := range n {
		if (eqNode{want: w}).eval(v, present) {
			return true
		}
	}
	return false
}

type prefixNode string

func (n prefixNode) eval(v any, present bool) bool {
	if !present {
		return false
	}
	v = whole(v)
	switch x := v.(type) {
	case string:
		return strings.HasPrefix(x, string(n))
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && strings.HasPrefix(s, string(n)) {
				return true
			}
		}
	}
	return false
}

// orderNode is $gt, $gte, $lt or $lte against a number or a string.
type orderNode struct {
	op    string
	isNum bool
	num   number
	str   string
}

func (n orderNode) eval(v any, present bool) bool {
	if !present {
		return false
	}
	v = whole(v)
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if n.one(e) {
				return true
			}
		}
		return false
	}
	return n.one(v)
}

func (n orderNode) one(v any) bool {
	var c int
	switch x := v.(type) {
	case json.Number:
		if !n.isNum {
			return false
		}
		num, err := parseNumber(x)
		if err != nil {
			return false
		}
		c = num.cmp(n.num)
	case string:
		if n.isNum {
			return false
		}
		c = strings.Compare(x, n.str)
	default:
		return false
	}
	switch n.op {
	case "$gt":
		return c > 0
	case "$gte":
		return c >= 0
	case "$lt":
		return c < 0
	default: // $lte
		return c <= 0
	}
}

// number is a JSON number: exact when it is an integer that fits 64 bits, else a float.
type number struct {
	i     int64
	f     float64
	exact bool
}

func parseNumber(s json.Number) (number, error) {
	if i, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		return number{i: i, f: float64(i), exact: true}, nil
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		// Out of range (1e400): ParseFloat returns ±Inf, which still orders.
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return number{}, err
		}
	}
	return number{f: f}, nil
}

func (a number) cmp(b number) int {
	if a.exact && b.exact {
		switch {
		case a.i < b.i:
			return -1
		case a.i > b.i:
			return 1
		}
		return 0
	}
	switch {
	case a.f < b.f:
		return -1
	case a.f > b.f:
		return 1
	}
	return 0
}

// equal is JSON equality, numbers compared numerically.
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		p, err1 := parseNumber(x)
		q, err2 := parseNumber(y)
		return err1 == nil && err2 == nil && p.cmp(q) == 0
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equal(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}

// PayloadField is the payload's top-level field key, decoded as encoding/json decodes it
// with UseNumber (false when the payload is not a JSON object or has no such field). It
// shares the Doc's work with the filters evaluated on it: other readers of the payload
// (business keys) decode no more than they name.
func (d *Doc) PayloadField(key string) (any, bool) {
	p, ok := d.field("payload")
	if !ok {
		return nil, false
	}
	switch x := p.(type) {
	case *object:
		return x.field(key)
	case map[string]any:
		v, ok := x[key]
		return v, ok
	}
	return nil, false
}
