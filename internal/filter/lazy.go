package filter

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// object is a payload that is one valid JSON object, its top-level fields decoded one
// at a time as filters step into them. index, which made it, checked the bytes and
// noted where each top-level field's key and value are, in one pass.
type object struct {
	raw    []byte
	spans  []span      // the top-level fields, in order
	fields []lazyField // fields looked up so far, found or not
	value  any         // the whole object decoded, once a rule compares it as a value
	// Storage for the slices above that most payloads and filters need no more than.
	smallSpans  [12]span
	smallFields [8]lazyField
}

// span is a top-level field: raw[key:keyEnd] is its quoted key, raw[val:end] its value.
type span struct{ key, keyEnd, val, end int }

type lazyField struct {
	key     string
	value   any
	present bool
}

// field is the value of the top-level field key, decoded as encoding/json decodes it
// with UseNumber; of duplicate keys the last counts, as in a decode into a map.
func (o *object) field(key string) (any, bool) {
	for _, f := range o.fields {
		if f.key == key {
			return f.value, f.present
		}
	}
	var v any
	ok := false
	for i := len(o.spans) - 1; i >= 0; i-- {
		sp := o.spans[i]
		if keyIs(o.raw[sp.key:sp.keyEnd], key) {
			v, ok = decodeValue(o.raw[sp.val:sp.end]), true
			break
		}
	}
	o.fields = append(o.fields, lazyField{key: key, value: v, present: ok})
	return v, ok
}

// whole is v with a lazy object decoded whole, for the rules that compare a value.
func whole(v any) any {
	o, ok := v.(*object)
	if !ok {
		return v
	}
	if o.value == nil {
		o.value = decodeValue(o.raw)
	}
	return o.value
}

// index makes the lazy object of raw when raw is one valid JSON object with nothing but
// white space around it, else returns nil (the caller then decodes raw whole). It is at
// least as strict as encoding/json: whatever it takes, encoding/json takes too.
func index(raw []byte) *object {
	i := skipSpace(raw, 0)
	if i == len(raw) || raw[i] != '{' {
		return nil
	}
	o := &object{raw: raw}
	o.spans, o.fields = o.smallSpans[:0], o.smallFields[:0]
	v := validator{b: raw}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		i++
	} else {
		for {
			if i >= len(raw) || raw[i] != '"' {
				return nil
			}
			k := i
			if i = v.str(i); i < 0 {
				return nil
			}
			kEnd := i
			i = skipSpace(raw, i)
			if i >= len(raw) || raw[i] != ':' {
				return nil
			}
			i = skipSpace(raw, i+1)
			val := i
			if i = v.value(i, 1); i < 0 {
				return nil
			}
			o.spans = append(o.spans, span{key: k, keyEnd: kEnd, val: val, end: i})
			i = skipSpace(raw, i)
			if i >= len(raw) {
				return nil
			}
			if raw[i] == '}' {
				i++
				break
			}
			if raw[i] != ',' {
				return nil
			}
			i = skipSpace(raw, i+1)
		}
	}
	if skipSpace(raw, i) != len(raw) {
		return nil
	}
	return o
}

// maxDepth is encoding/json's bound on nesting; deeper is left to it.
const maxDepth = 10000

// validator checks JSON values; each method takes the index of a value's first byte
// and returns the index after it, or -1 when it is not valid.
type validator struct{ b []byte }

func (v validator) value(i, depth int) int {
	b := v.b
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		return v.str(i)
	case c == '{' || c == '[':
		if depth+1 > maxDepth {
			return -1
		}
		return v.composite(i, depth+1)
	case c == 't':
		return v.literal(i, "true")
	case c == 'f':
		return v.literal(i, "false")
	case c == 'n':
		return v.literal(i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return v.number(i)
	}
	return -1
}

// composite is an object or an array below the top level.
func (v validator) composite(i, depth int) int {
	b := v.b
	obj := b[i] == '{'
	closing := byte(']')
	if obj {
		closing = '}'
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == closing {
		return i + 1
	}
	for {
		if obj {
			if i >= len(b) || b[i] != '"' {
				return -1
			}
			if i = v.str(i); i < 0 {
				return -1
			}
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return -1
			}
			i = skipSpace(b, i+1)
		}
		if i = v.value(i, depth); i < 0 {
			return -1
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return -1
		}
		if b[i] == closing {
			return i + 1
		}
		if b[i] != ',' {
			return -1
		}
		i = skipSpace(b, i+1)
	}
}

func (v validator) literal(i int, lit string) int {
	if len(v.b)-i < len(lit) || string(v.b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// str is a string; bytes that are not UTF-8 are allowed, as encoding/json allows them.
func (v validator) str(i int) int {
	b := v.b
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return -1
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// number is -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (v validator) number(i int) int {
	b := v.b
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return -1
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		i = digits(b, i)
	} else {
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// keyIs reports whether the quoted JSON string q decodes to key.
func keyIs(q []byte, key string) bool {
	inner := q[1 : len(q)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		// Without escapes a key decodes to its bytes when they are valid UTF-8, and to
		// something longer when they are not (an invalid byte becomes U+FFFD): most keys
		// are told apart by their length, before any check of their UTF-8.
		switch {
		case len(key) < len(inner):
			return false
		case len(key) == len(inner):
			return string(inner) == key && utf8.Valid(inner)
		case utf8.Valid(inner):
			return false
		}
	}
	var s string
	return json.Unmarshal(q, &s) == nil && s == key
}

// plain: a string's content that decodes to itself (no escapes, valid UTF-8).
func plain(b []byte) bool {
	return bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b)
}

// DecodeValue decodes one valid JSON value (nothing around it) as encoding/json does
// into an any with UseNumber: for values another pass has already checked and cut out,
// such as the members a schema's one-pass check notes for business keys.
func DecodeValue(raw []byte) any { return decodeValue(raw) }

// decodeValue decodes one valid JSON value as encoding/json does with UseNumber; the
// common scalars without the decoder.
func decodeValue(raw []byte) any {
	switch raw[0] {
	case '"':
		if inner := raw[1 : len(raw)-1]; plain(inner) {
			return string(inner)
		}
	case 't':
		return true
	case 'f':
		return false
	case 'n':
		return nil
	case '{', '[':
	default:
		return json.Number(raw)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	_ = dec.Decode(&v) // valid: cannot fail
	return v
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
