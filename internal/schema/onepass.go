package schema

import (
	"bytes"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The one-pass check. Validating a payload the general way decodes it into Go values
// (maps, slices, strings, json.Number: about one allocation per value) and then walks
// them twice, to count the work and to validate; for a 1 KiB payload that costs many
// times the parsing the API has already done. Most event-type schemas use a handful of
// keywords — type, properties, required, additionalProperties, items, the bounds on
// lengths, counts and numbers, $ref — and those can be checked while the bytes are read
// once, allocating nothing. So Compile also compiles such a schema into a tree of nodes,
// and Validate first runs that over the bytes: a payload it passes is valid JSON that the
// schema accepts. Anything else — a payload it fails, one it is unsure of (a key with an
// escape, a length of a string with escapes, a number near a bound or an integer written
// with a fraction), a schema using any other keyword — goes the general way, so every
// error message and every refusal is the general way's. The check counts the schemas it
// applies, as the general way does, and past MaxWork hands over too (the general way
// counts at least as many and refuses).
//
// The check also runs where a payload stands in a request body (ValidatePrefix): the
// API hands each payload to its type's check as it reads the body, so that a payload is
// read once, its syntax and its schema together. That pass also notes whether
// encoding/json would write the value exactly as it is (no white space between tokens,
// no escape, none of <, >, &, U+2028, U+2029), so that the reply need not look again.

// Types as bits of node.types.
const (
	tNull = 1 << iota
	tBool
	tNumber
	tInteger
	tString
	tArray
	tObject
)

// node is one schema compiled for the one-pass check.
type node struct {
	bool     int8 // boolean schema: 1 true, -1 false, 0 not one
	types    uint8
	ref      *node
	props    map[string]*node
	required []string
	noAddl   bool  // additionalProperties: false
	addl     *node // additionalProperties as a schema
	items    *node

	minItems, maxItems int // -1: none
	minLen, maxLen     int // -1: none
	// Number bounds, as float64 exactly equal to the schema's (a bound that is not
	// exactly a float64 makes the schema go the general way).
	min, max, exMin, exMax *float64
}

// compileOnePass compiles s for the one-pass check; nil when it uses a keyword the check
// does not know.
func compileOnePass(s *jsonschema.Schema) *node {
	seen := map[*jsonschema.Schema]*node{}
	n, ok := onePassNode(s, seen)
	if !ok {
		return nil
	}
	return n
}

func onePassNode(s *jsonschema.Schema, seen map[*jsonschema.Schema]*node) (*node, bool) {
	if s == nil {
		return nil, true
	}
	if n, ok := seen[s]; ok {
		return n, true // Compile refused cycles: this is a shared definition
	}
	if !onePassKnows(s) {
		return nil, false
	}
	n := &node{minItems: -1, maxItems: -1, minLen: -1, maxLen: -1}
	seen[s] = n
	if s.Bool != nil {
		n.bool = -1
		if *s.Bool {
			n.bool = 1
		}
		return n, true
	}
	if s.Types != nil {
		for _, t := range s.Types.ToStrings() {
			n.types |= map[string]uint8{"null": tNull, "boolean": tBool, "number": tNumber, "integer": tInteger,
				"string": tString, "array": tArray, "object": tObject}[t]
		}
	}
	var ok bool
	if n.ref, ok = onePassNode(s.Ref, seen); !ok {
		return nil, false
	}
	if len(s.Properties) > 0 {
		n.props = make(map[string]*node, len(s.Properties))
		for k, c := range s.Properties {
			if n.props[k], ok = onePassNode(c, seen); !ok {
				return nil, false
			}
		}
	}
	n.required = s.Required
	switch a := s.AdditionalProperties.(type) {
	case bool:
		n.noAddl = !a
	case *jsonschema.Schema:
		if n.addl, ok = onePassNode(a, seen); !ok {
			return nil, false
		}
	}
	items := s.Items2020
	if it, isSchema := s.Items.(*jsonschema.Schema); isSchema {
		items = it
	}
	if n.items, ok = onePassNode(items, seen); !ok {
		return nil, false
	}
	for _, b := range []struct {
		from *int
		to   *int
	}{{s.MinItems, &n.minItems}, {s.MaxItems, &n.maxItems}, {s.MinLength, &n.minLen}, {s.MaxLength, &n.maxLen}} {
		if b.from != nil {
			*b.to = *b.from
		}
	}
	for _, b := range []struct {
		from *big.Rat
		to   **float64
	}{{s.Minimum, &n.min}, {s.Maximum, &n.max}, {s.ExclusiveMinimum, &n.exMin}, {s.ExclusiveMaximum, &n.exMax}} {
		if b.from == nil {
			continue
		}
		f, exact := b.from.Float64()
		if !exact {
			return nil, false
		}
		*b.to = &f
	}
	return n, true
}

// onePassKnows reports whether s uses only keywords the one-pass check applies (and
// annotations, which change nothing).
func onePassKnows(s *jsonschema.Schema) bool {
	_, tuple := s.Items.([]*jsonschema.Schema)
	return s.Enum == nil && s.Const == nil && s.Not == nil && len(s.AllOf) == 0 && len(s.AnyOf) == 0 && len(s.OneOf) == 0 &&
		s.If == nil && s.Then == nil && s.Else == nil && s.Format == nil && s.RecursiveRef == nil && s.DynamicRef == nil &&
		s.MaxProperties == nil && s.MinProperties == nil && s.PropertyNames == nil && len(s.PatternProperties) == 0 &&
		len(s.Dependencies) == 0 && len(s.DependentRequired) == 0 && len(s.DependentSchemas) == 0 &&
		s.UnevaluatedProperties == nil && !s.UniqueItems && s.Contains == nil && s.MinContains == nil && s.MaxContains == nil &&
		!tuple && s.AdditionalItems == nil && len(s.PrefixItems) == 0 && s.UnevaluatedItems == nil &&
		s.Pattern == nil && s.ContentEncoding == nil && s.ContentMediaType == nil && s.ContentSchema == nil &&
		s.MultipleOf == nil && len(s.Extensions) == 0
}

// maxOnePassDepth is how deeply the check follows a payload's nesting before it hands
// the payload to the general way.
const maxOnePassDepth = 512

// onePass checks doc against n in one pass over its bytes; true only when doc is valid
// JSON (one value, white space around it) that the schema accepts.
func onePass(n *node, doc []byte) bool {
	return onePassFields(n, doc, nil, nil)
}

// prefix reads the one JSON value at the start of b against n, as onePassFields reads a
// whole document (names and fields alike): the index after the value, or -1; and
// whether the value is verbatim (see Schema.ValidatePrefix).
func prefix(n *node, b []byte, names []string, fields [][]byte) (end int, verbatim bool) {
	if len(names) > maxNoted {
		return -1, false
	}
	c := checker{b: b, left: MaxWork, names: names}
	end = c.value(0, n, 0)
	copy(fields, c.noted[:len(names)])
	return end, end >= 0 && !c.altered
}

// onePassFields is onePass that also notes, when doc is an object, the raw value of each
// top-level member named in names: fields[i] for names[i] (the last of a repeated
// name), untouched when absent. A key with an escape makes the check unsure, so a name
// is only ever matched byte for byte.
func onePassFields(n *node, doc []byte, names []string, fields [][]byte) bool {
	if len(names) > maxNoted {
		return false
	}
	c := checker{b: doc, left: MaxWork, names: names}
	i := c.space(0)
	i = c.value(i, n, 0)
	copy(fields, c.noted[:len(names)])
	return i >= 0 && c.space(i) == len(doc)
}

// maxNoted is the most top-level members a check notes: as many as an event type's
// business keys may start from (consign.MaxEventTypeKeys).
const maxNoted = 8

// checker reads a document once; each method takes the index of a value's first byte
// and returns the index after it, or -1 when the value is not valid JSON, fails its
// schema, or the check is unsure.
type checker struct {
	b    []byte
	left int // schemas the check may still apply
	// names and noted: the top-level members to note (onePassFields) and their values,
	// held here and copied out at the end, so that the caller's fields stay on its stack.
	names []string
	noted [maxNoted][]byte
	// altered: encoding/json would not write the value as it is (json.RawMessage
	// compacted, HTML and line separators escaped), or the check could not tell: white
	// space between tokens, or a string with an escape or one of <, >, & or 0xE2 (the
	// first byte of U+2028 and U+2029, and of other characters).
	altered bool
}

func (c *checker) space(i int) int {
	start := i
	for i < len(c.b) {
		switch c.b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			c.altered = c.altered || i > start
			return i
		}
	}
	c.altered = c.altered || i > start
	return i
}

// value reads the value at i, checking it against n (nil: no schema applies).
func (c *checker) value(i int, n *node, depth int) int {
	if i >= len(c.b) || depth > maxOnePassDepth {
		return -1
	}
	if n == nil {
		return c.skip(i, depth)
	}
	// The schemas that apply here: n, and what n refers to.
	var ns [4]*node
	k := 0
	for m := n; m != nil; m = m.ref {
		if c.left--; c.left < 0 {
			return -1
		}
		switch {
		case m.bool < 0:
			return -1
		case m.bool == 0 && k < len(ns):
			ns[k] = m
			k++
		case m.bool == 0:
			return -1 // a long chain of $refs: the general way
		}
	}
	apply := ns[:k]
	switch ch := c.b[i]; {
	case ch == '{':
		if !typeOK(apply, tObject) {
			return -1
		}
		return c.object(i, apply, depth)
	case ch == '[':
		if !typeOK(apply, tArray) {
			return -1
		}
		return c.array(i, apply, depth)
	case ch == '"':
		if !typeOK(apply, tString) {
			return -1
		}
		bounded := false
		for _, m := range apply {
			bounded = bounded || m.minLen >= 0 || m.maxLen >= 0
		}
		end, runes := c.str(i, bounded)
		if end < 0 {
			return -1
		}
		for _, m := range apply {
			if (m.minLen >= 0 || m.maxLen >= 0) && runes < 0 {
				return -1 // escapes: let the decoder count
			}
			if m.minLen >= 0 && runes < m.minLen || m.maxLen >= 0 && runes > m.maxLen {
				return -1
			}
		}
		return end
	case ch == 't':
		return c.literal(i, "true", apply, tBool)
	case ch == 'f':
		return c.literal(i, "false", apply, tBool)
	case ch == 'n':
		return c.literal(i, "null", apply, tNull)
	default:
		return c.number(i, apply)
	}
}

// skip reads the value at i, to which no schema applies: it checks only that it is JSON.
func (c *checker) skip(i, depth int) int {
	b := c.b
	if i >= len(b) || depth > maxOnePassDepth {
		return -1
	}
	switch ch := b[i]; ch {
	case '"':
		end, _ := c.str(i, false)
		return end
	case '{', '[':
		closer := byte('}')
		if ch == '[' {
			closer = ']'
		}
		i = c.space(i + 1)
		if i < len(b) && b[i] == closer {
			return i + 1
		}
		for {
			if ch == '{' {
				if i >= len(b) || b[i] != '"' {
					return -1
				}
				if i, _ = c.str(i, false); i < 0 {
					return -1
				}
				if i = c.space(i); i >= len(b) || b[i] != ':' {
					return -1
				}
				i = c.space(i + 1)
			}
			if i = c.skip(i, depth+1); i < 0 {
				return -1
			}
			if i = c.space(i); i >= len(b) {
				return -1
			}
			if b[i] == closer {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = c.space(i + 1)
		}
	case 't':
		return c.literal(i, "true", nil, tBool)
	case 'f':
		return c.literal(i, "false", nil, tBool)
	case 'n':
		return c.literal(i, "null", nil, tNull)
	default:
		return c.number(i, nil)
	}
}

// typeOK reports whether a value of type t passes every schema's type keyword.
func typeOK(apply []*node, t uint8) bool {
	for _, m := range apply {
		if m.types != 0 && m.types&t == 0 {
			return false
		}
	}
	return true
}

func (c *checker) literal(i int, lit string, apply []*node, t uint8) int {
	if len(c.b)-i < len(lit) || string(c.b[i:i+len(lit)]) != lit || !typeOK(apply, t) {
		return -1
	}
	return i + len(lit)
}

func (c *checker) object(i int, apply []*node, depth int) int {
	var seen [8]uint64 // required keys seen, per schema, as bits (up to 64 each)
	for _, m := range apply {
		if len(m.required) > 64 || len(apply) > len(seen) {
			return -1
		}
	}
	i = c.space(i + 1)
	if i < len(c.b) && c.b[i] == '}' {
		return c.requiredSeen(i+1, apply, seen[:])
	}
	for {
		if i >= len(c.b) || c.b[i] != '"' {
			return -1
		}
		end, _ := c.str(i, false)
		if end < 0 {
			return -1
		}
		key := c.b[i+1 : end-1]
		for _, ch := range key {
			if ch == '\\' {
				return -1 // an escaped key: let the decoder read it
			}
		}
		i = c.space(end)
		if i >= len(c.b) || c.b[i] != ':' {
			return -1
		}
		i = c.space(i + 1)
		// The schema for this member's value: at most one per schema that applies.
		var child *node
		for j, m := range apply {
			for r, name := range m.required {
				if name == string(key) {
					seen[j] |= 1 << r
				}
			}
			sub, inProps := m.props[string(key)]
			switch {
			case inProps:
			case m.noAddl:
				return -1
			default:
				sub = m.addl
			}
			if sub == nil {
				continue
			}
			if child != nil && child != sub {
				return -1 // two schemas for one value: the general way
			}
			child = sub
		}
		start := i
		if i = c.value(i, child, depth+1); i < 0 {
			return -1
		}
		if depth == 0 {
			for j, name := range c.names {
				if name == string(key) {
					c.noted[j] = c.b[start:i]
				}
			}
		}
		i = c.space(i)
		if i >= len(c.b) {
			return -1
		}
		if c.b[i] == '}' {
			return c.requiredSeen(i+1, apply, seen[:])
		}
		if c.b[i] != ',' {
			return -1
		}
		i = c.space(i + 1)
	}
}

// requiredSeen returns end when every schema's required keys were seen, else -1.
func (c *checker) requiredSeen(end int, apply []*node, seen []uint64) int {
	for j, m := range apply {
		if n := len(m.required); n > 0 && seen[j] != 1<<n-1 {
			return -1
		}
	}
	return end
}

func (c *checker) array(i int, apply []*node, depth int) int {
	var items *node
	for _, m := range apply {
		if m.items == nil {
			continue
		}
		if items != nil && items != m.items {
			return -1
		}
		items = m.items
	}
	n := 0
	i = c.space(i + 1)
	if i < len(c.b) && c.b[i] == ']' {
		i++
	} else {
		for {
			if i = c.value(i, items, depth+1); i < 0 {
				return -1
			}
			n++
			i = c.space(i)
			if i >= len(c.b) {
				return -1
			}
			if c.b[i] == ']' {
				i++
				break
			}
			if c.b[i] != ',' {
				return -1
			}
			i = c.space(i + 1)
		}
	}
	for _, m := range apply {
		if m.minItems >= 0 && n < m.minItems || m.maxItems >= 0 && n > m.maxItems {
			return -1
		}
	}
	return i
}

// str reads the string at i (c.b[i] == '"'): the index after it and, when runes is
// asked for, its length in runes as the decoder counts them (-1 when it has escapes).
// Most strings have no escape: their end is found with bytes.IndexByte and their bytes
// checked in one tight loop.
func (c *checker) str(i int, runes bool) (end, n int) {
	b := c.b
	if j := bytes.IndexByte(b[i+1:], '"'); j >= 0 {
		seg := b[i+1 : i+1+j]
		plain := true
		for _, ch := range seg {
			if k := strByte[ch]; k != 0 {
				if k == strEnds {
					plain = false
					break
				}
				c.altered = true
			}
		}
		if plain {
			if runes {
				// Invalid UTF-8 decodes to U+FFFD, one rune per bad byte, as RuneCount steps.
				n = utf8.RuneCount(seg)
			}
			return i + 2 + j, n
		}
	}
	return c.escapedStr(i)
}

// What a byte inside a string means to str: strEnds, it ends the plain loop (a control
// character or an escape); strAltered, encoding/json writes it otherwise (<, >, &, and
// 0xE2, the first byte of U+2028 and U+2029).
const (
	strEnds = 1 + iota
	strAltered
)

var strByte = func() (t [256]uint8) {
	for ch := range 0x20 {
		t[ch] = strEnds
	}
	t['\\'] = strEnds
	for _, ch := range []byte("<>&\xe2") {
		t[ch] = strAltered
	}
	return t
}()

// escapedStr is str for a string with escapes or control characters.
func (c *checker) escapedStr(i int) (end, n int) {
	c.altered = true // the check does not tell which escapes encoding/json keeps
	b := c.b
	escaped := false
	for i++; i < len(b); {
		ch := b[i]
		switch {
		case ch == '"':
			if escaped {
				return i + 1, -1
			}
			return i + 1, n
		case ch < 0x20:
			return -1, 0
		case ch == '\\':
			escaped = true
			if i+1 >= len(b) {
				return -1, 0
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return -1, 0
				}
				for _, h := range b[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1, 0
					}
				}
				i += 6
			default:
				return -1, 0
			}
		default:
			_, size := utf8.DecodeRune(b[i:])
			i += size
			n++
		}
	}
	return -1, 0
}

// number reads the number at i, as JSON's grammar has it, and checks it against the
// schemas' type and bounds; unsure (-1) when a bound is too close to tell by float64 or
// an integer-only schema meets a fraction or exponent.
func (c *checker) number(i int, apply []*node) int {
	b := c.b
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	default:
		return -1
	}
	integer := true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	// The literal is exactly its float64 when it is an integer of at most 15 digits.
	exact := integer && i-start <= 15
	var f float64
	parsed := false
	for _, m := range apply {
		if m.types != 0 && m.types&tNumber == 0 {
			if m.types&tInteger == 0 || !integer {
				return -1 // not a number here, or maybe an integer written as 2.0
			}
		}
		if m.min == nil && m.max == nil && m.exMin == nil && m.exMax == nil {
			continue
		}
		if !parsed {
			var err error
			if f, err = strconv.ParseFloat(string(b[start:i]), 64); err != nil {
				return -1
			}
			parsed = true
		}
		if !beyond(f, m.min, 1, true, exact) || !beyond(f, m.exMin, 1, false, exact) ||
			!beyond(f, m.max, -1, true, exact) || !beyond(f, m.exMax, -1, false, exact) {
			return -1
		}
	}
	return i
}

// beyond reports whether the payload's number, f as parsed (correctly rounded; exactly
// the number when exact), is surely on the right side of bound: above it for side 1,
// below it for side -1, or equal to it when orEqual. False when it is not, or when it is
// too close to the bound to tell by float64s.
func beyond(f float64, bound *float64, side float64, orEqual, exact bool) bool {
	if bound == nil {
		return true
	}
	if f == *bound {
		return orEqual && exact
	}
	// f is within half an ulp of the number: a distance of two ulps decides.
	margin := 2 * ulp(math.Max(math.Abs(f), math.Abs(*bound)))
	return side*(f-*bound) > margin
}

func ulp(f float64) float64 {
	return math.Nextafter(f, math.Inf(1)) - f
}
