package transform

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// decode builds the JavaScript value of a JSON document in one pass over its bytes, as
// JSON.parse would, without JSON.parse's detour through encoding/json's tokens (most of
// a small transformation's time went there). doc is valid JSON: the payload was checked
// at publish, and a downgrade's output is JSON.stringify's.
func decode(rt *goja.Runtime, doc []byte) (goja.Value, error) {
	d := decoder{rt: rt, b: doc}
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	if d.skip(); d.i != len(d.b) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

type decoder struct {
	rt *goja.Runtime
	b  []byte
	i  int
}

var errSyntax = errors.New("the payload is not valid JSON")

func (d *decoder) skip() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) value() (goja.Value, error) {
	d.skip()
	if d.i >= len(d.b) {
		return nil, errSyntax
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		obj := d.rt.NewObject()
		d.skip()
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			return obj, nil
		}
		for {
			d.skip()
			key, err := d.str()
			if err != nil {
				return nil, err
			}
			d.skip()
			if d.i >= len(d.b) || d.b[d.i] != ':' {
				return nil, errSyntax
			}
			d.i++
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			if err := obj.Set(key, v); err != nil {
				return nil, err
			}
			d.skip()
			if d.i >= len(d.b) {
				return nil, errSyntax
			}
			if d.b[d.i] == ',' {
				d.i++
				continue
			}
			if d.b[d.i] != '}' {
				return nil, errSyntax
			}
			d.i++
			return obj, nil
		}
	case c == '[':
		d.i++
		var items []any
		d.skip()
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			return d.rt.NewArray(), nil
		}
		for {
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			items = append(items, v)
			d.skip()
			if d.i >= len(d.b) {
				return nil, errSyntax
			}
			if d.b[d.i] == ',' {
				d.i++
				continue
			}
			if d.b[d.i] != ']' {
				return nil, errSyntax
			}
			d.i++
			return d.rt.NewArray(items...), nil
		}
	case c == '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return d.rt.ToValue(s), nil
	case c == 't' && d.lit("true"):
		return d.rt.ToValue(true), nil
	case c == 'f' && d.lit("false"):
		return d.rt.ToValue(false), nil
	case c == 'n' && d.lit("null"):
		return goja.Null(), nil
	case c == '-' || c >= '0' && c <= '9':
		start := d.i
		for d.i < len(d.b) && (d.b[d.i] >= '0' && d.b[d.i] <= '9' || d.b[d.i] == '-' || d.b[d.i] == '+' || d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
			d.i++
		}
		f, err := strconv.ParseFloat(string(d.b[start:d.i]), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, errSyntax
		}
		if i := int64(f); float64(i) == f && (f != 0 || d.b[start] != '-') {
			return d.rt.ToValue(i), nil
		}
		return d.rt.ToValue(f), nil
	}
	return nil, errSyntax
}

func (d *decoder) lit(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

// str reads a JSON string; one with escapes or non-ASCII goes through encoding/json.
func (d *decoder) str() (string, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", errSyntax
	}
	start := d.i
	d.i++
	simple := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if simple {
				return string(d.b[start+1 : d.i-1]), nil
			}
			var s string
			if err := json.Unmarshal(d.b[start:d.i], &s); err != nil {
				return "", errSyntax
			}
			return s, nil
		case c == '\\':
			simple = false
			d.i += 2
			continue
		case c >= utf8.RuneSelf:
			simple = false
		}
		d.i++
	}
	return "", errSyntax
}
