package transform

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// encode writes the JSON form of a value the code returned, as JSON.stringify would, in
// one walk over the value straight to bytes (goja's JSON.stringify quotes through a rune
// reader and was most of a small transformation's time). It walks only plain values:
// objects of class Object, arrays, strings, numbers, booleans and null, with undefined,
// functions and symbols dropped from objects and null in arrays. At anything else (a
// toJSON method, a Date, a boxed primitive, a BigInt, a Map, nesting past maxDepth, which
// includes a cycle) it reports ok false and the caller asks JSON.stringify, so the two
// never differ (FuzzEncodeMatchesJSONStringify). Getters and proxies' traps run in
// JSON.stringify's order; a value that goes to JSON.stringify after a partial walk has
// the getters already met run a second time.
//
// A walk stops as soon as the JSON passes MaxPayload bytes (out is then longer than
// MaxPayload): goja does not interrupt Go code, so a value like new Array(1e9) must not
// be written out in full.
func encode(buf []byte, v goja.Value) (out []byte, ok bool) {
	e := encoder{b: buf}
	if !e.value(v, 0) || e.undef && !e.over() {
		return buf, false
	}
	return e.b, true
}

var (
	typeArray = reflect.TypeOf([]any(nil))
	typeMap   = reflect.TypeOf(map[string]any(nil))
)

// maxDepth bounds the nesting encode walks; deeper values (or cycles) go to JSON.stringify.
const maxDepth = 256

type encoder struct {
	b []byte
	// undef is set when the last value had no JSON form (undefined, a function, a symbol).
	undef bool
}

func (e *encoder) over() bool { return len(e.b) > MaxPayload }

// value appends v, or sets undef when v has no JSON form; false: leave v to JSON.stringify.
func (e *encoder) value(v goja.Value, depth int) bool {
	e.undef = false
	if v == nil || goja.IsUndefined(v) {
		e.undef = true
		return true
	}
	if goja.IsNull(v) {
		e.b = append(e.b, "null"...)
		return true
	}
	if _, ok := v.(*goja.Symbol); ok {
		e.undef = true
		return true
	}
	if s, ok := v.(goja.String); ok {
		e.str(s)
		return true
	}
	if o, ok := v.(*goja.Object); ok {
		return e.object(o, depth)
	}
	switch x := v.Export().(type) {
	case bool:
		e.b = strconv.AppendBool(e.b, x)
	case int64:
		e.b = strconv.AppendInt(e.b, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			e.b = append(e.b, "null"...)
		} else {
			e.b = append(e.b, v.String()...) // the engine's Number-to-String, as JSON.stringify
		}
	default: // a BigInt: JSON.stringify throws
		return false
	}
	return true
}

func (e *encoder) object(o *goja.Object, depth int) bool {
	if depth >= maxDepth {
		return false
	}
	class := o.ClassName()
	if class == "Function" {
		e.undef = true
		return true
	}
	// An array or a plain object exports as a slice or a map; a proxy, a Go value or an
	// object of another class goes to JSON.stringify.
	array := class == "Array" && o.ExportType() == typeArray
	if !array && (class != "Object" || o.ExportType() != typeMap) {
		return false
	}
	if _, ok := goja.AssertFunction(o.Get("toJSON")); ok {
		return false
	}
	if array {
		n := o.Get("length").ToInteger()
		e.b = append(e.b, '[')
		for i := int64(0); i < n; i++ {
			if e.over() {
				return true
			}
			if i > 0 {
				e.b = append(e.b, ',')
			}
			if !e.value(o.Get(strconv.FormatInt(i, 10)), depth+1) {
				return false
			}
			if e.undef {
				e.b = append(e.b, "null"...)
			}
		}
		e.b = append(e.b, ']')
		e.undef = false
		return true
	}
	e.b = append(e.b, '{')
	empty := true
	for _, k := range o.Keys() {
		if e.over() {
			return true
		}
		if !ascii(k) && strings.ContainsRune(k, utf8.RuneError) {
			return false // a key with a lone surrogate, which Keys cannot give back as it is
		}
		mark := len(e.b)
		if !empty {
			e.b = append(e.b, ',')
		}
		e.quote(k)
		e.b = append(e.b, ':')
		if !e.value(o.Get(k), depth+1) {
			return false
		}
		if e.undef {
			e.b = e.b[:mark]
			continue
		}
		empty = false
	}
	e.b = append(e.b, '}')
	e.undef = false
	return true
}

// str appends a JavaScript string quoted: its UTF-16 units read as the engine does, a
// lone surrogate written as \uXXXX (JSON.stringify's well-formed output).
func (e *encoder) str(s goja.String) {
	t := s.String()
	if ascii(t) {
		e.quote(t)
		return
	}
	e.b = append(e.b, '"')
	n := s.Length()
	for i := 0; i < n; i++ {
		c := rune(s.CharAt(i))
		if utf16.IsSurrogate(c) {
			if c < 0xDC00 && i+1 < n {
				if r := utf16.DecodeRune(c, rune(s.CharAt(i+1))); r != utf8.RuneError {
					e.b = utf8.AppendRune(e.b, r)
					i++
					continue
				}
			}
			e.b = append(e.b, `\u`...)
			e.b = append(e.b, hex[c>>12], hex[c>>8&0xF], hex[c>>4&0xF], hex[c&0xF])
			continue
		}
		e.char(c)
	}
	e.b = append(e.b, '"')
}

// quote appends a Go string (valid UTF-8: an object key, or an ASCII string) quoted.
func (e *encoder) quote(s string) {
	e.b = append(e.b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			e.b = append(e.b, s[start:i]...)
			e.char(rune(c))
			start = i + 1
		}
	}
	e.b = append(e.b, s[start:]...)
	e.b = append(e.b, '"')
}

// char appends one character, escaped as JSON.stringify escapes it.
func (e *encoder) char(c rune) {
	switch c {
	case '"', '\\':
		e.b = append(e.b, '\\', byte(c))
	case '\b':
		e.b = append(e.b, `\b`...)
	case '\t':
		e.b = append(e.b, `\t`...)
	case '\n':
		e.b = append(e.b, `\n`...)
	case '\f':
		e.b = append(e.b, `\f`...)
	case '\r':
		e.b = append(e.b, `\r`...)
	default:
		if c < 0x20 {
			e.b = append(e.b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		} else {
			e.b = utf8.AppendRune(e.b, c)
		}
	}
}

const hex = "0123456789abcdef"

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
