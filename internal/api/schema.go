package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/consign-dev/consign"
)

// schemas builds JSON Schemas (2020-12, as OpenAPI 3.1 uses) of Go types by reflection,
// the way encoding/json writes them: json tags name and omit fields, embedded structs are
// flattened, pointers are nullable, time.Time is a date-time string, consign.Duration a
// duration string and json.RawMessage any JSON value. Named struct types become shared
// components referenced by $ref; generic ones (list[T]) are written in place. A field's
// doc tag, when set, is its description.
type schemas struct {
	defs  map[string]any
	names map[reflect.Type]string
}

func newSchemas() *schemas {
	return &schemas{defs: map[string]any{}, names: map[reflect.Type]string{}}
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[consign.Duration]()
	rawType      = reflect.TypeFor[json.RawMessage]()
	marshaler    = reflect.TypeFor[json.Marshaler]()
)

// of returns the schema of t.
func (s *schemas) of(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case durationType:
		return map[string]any{"type": "string", "description": `a duration such as "30s", "5m", "72h" or "7d"`, "examples": []string{"1h0m0s"}}
	case rawType:
		return map[string]any{"description": "any JSON value"}
	}
	if t.Kind() == reflect.Pointer {
		return nullable(s.of(t.Elem()))
	}
	// A generic wrapper that marshals as its one field V (inbound.Replace[T]).
	if strings.Contains(t.Name(), "[") && t.Kind() == reflect.Struct && t.NumField() == 1 && t.Field(0).Name == "V" &&
		t.Implements(marshaler) {
		return s.of(t.Field(0).Type)
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": s.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": s.of(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		if t.Name() == "" || strings.Contains(t.Name(), "[") {
			return s.object(t)
		}
		name, ok := s.names[t]
		if !ok {
			name = s.name(t)
			s.names[t] = name
			s.defs[name] = map[string]any{} // placeholder against recursion
			s.defs[name] = s.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

// name gives t a component name unique in the document: its type name, qualified by its
// package when two packages use the same one.
func (s *schemas) name(t reflect.Type) string {
	name := strings.ToUpper(t.Name()[:1]) + t.Name()[1:]
	if _, taken := s.defs[name]; taken {
		pkg := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
		name = strings.ToUpper(pkg[:1]) + pkg[1:] + name
	}
	return name
}

func nullable(sc map[string]any) map[string]any {
	if typ, ok := sc["type"].(string); ok {
		out := map[string]any{}
		for k, v := range sc {
			out[k] = v
		}
		out["type"] = []string{typ, "null"}
		return out
	}
	return map[string]any{"anyOf": []any{sc, map[string]any{"type": "null"}}}
}

// object is the schema of a struct's JSON object.
func (s *schemas) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	s.fields(t, props, map[string]bool{})
	return map[string]any{"type": "object", "properties": props}
}

// fields adds t's fields to props; names already set by an outer struct win, as in
// encoding/json.
func (s *schemas) fields(t reflect.Type, props map[string]any, seen map[string]bool) {
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		props[name] = s.of(f.Type)
		if doc := f.Tag.Get("doc"); doc != "" {
			// A field whose Go type says little (json.RawMessage) describes itself.
			sc := map[string]any{"description": doc}
			for k, v := range props[name].(map[string]any) {
				if k != "description" {
					sc[k] = v
				}
			}
			props[name] = sc
		}
	}
	for _, et := range embedded {
		s.fields(et, props, seen)
	}
}
