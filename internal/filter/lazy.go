package filter

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// object is a payload that is one valid JSON object, its top-level fields decoded one
// at a time as filters step into them. Its bytes are known valid (json.Valid), so the
// scanner below only finds where things end and checks nothing.
type object struct {
	raw    []byte
	fields []lazyField // fields looked up so far, found or not
	value  any         // the whole object decoded, once a rule compares it as a value
}

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
	raw, ok := lookup(o.raw, key)
	var v any
	if ok {
		v = decodeValue(raw)
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

// lookup finds the raw value of the last top-level field named key in the valid JSON
// object raw.
func lookup(raw []byte, key string) ([]byte, bool) {
	var found []byte
	ok := false
	i := skipSpace(raw, 0) + 1 // past '{'
	for {
		i = skipSpace(raw, i)
		if raw[i] == '}' {
			return found, ok
		}
		ks := i
		i = skipString(raw, i)
		k := raw[ks:i]
		i = skipSpace(raw, i) + 1 // past ':'
		i = skipSpace(raw, i)
		vs := i
		i = skipValue(raw, i)
		if keyIs(k, key) {
			found, ok = raw[vs:i], true
		}
		i = skipSpace(raw, i)
		if raw[i] == ',' {
			i++
		}
	}
}

// keyIs reports whether the quoted JSON string q decodes to key.
func keyIs(q []byte, key string) bool {
	inner := q[1 : len(q)-1]
	if plain(inner) {
		return string(inner) == key
	}
	var s string
	return json.Unmarshal(q, &s) == nil && s == key
}

// plain: a string's content that decodes to itself (no escapes, valid UTF-8).
func plain(b []byte) bool {
	return bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b)
}

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

// skipString returns the index after the string that starts at b[i].
func skipString(b []byte, i int) int {
	i++
	for b[i] != '"' {
		if b[i] == '\\' {
			i++
		}
		i++
	}
	return i + 1
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}
