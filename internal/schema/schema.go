// Package schema compiles and applies the JSON Schemas of event types. Schemas come from
// API clients, so compilation never loads anything from outside (no file or network
// references) and instances are size-limited by the caller.
//
// A schema is also bounded before it is accepted, so that neither compiling it nor
// applying it to a payload can take more than a moment: its document nests at most
// MaxDepth levels (the compiler's time grows with the square of the nesting), it may not
// refer to itself through $ref (a loop at one place of the payload would make every
// payload fail, and recursion through the payload's levels is not needed by a payload
// schema), it uses no $dynamicRef or $recursiveRef (resolved only while validating), and
// the tree it unfolds into when every $ref is replaced by its target holds at most
// MaxNodes schemas (a few lines of $defs that refer twice to the next one unfold into
// millions, each applied to the payload). A payload is refused, without validating it,
// when its validation would apply schemas to its values more than MaxWork times.
package schema

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Bounds on an accepted schema.
const (
	// MaxDepth is how deeply a schema document may nest objects and arrays. A payload
	// schema nests two levels per level of the payload ({"properties": {"a": {…}}}), so
	// this allows payloads 31 levels deep.
	MaxDepth = 64
	// MaxNodes is how many schemas a schema may hold once every $ref is unfolded.
	MaxNodes = 10000
	// MaxWork is how many times a payload's validation may apply a schema to one of its
	// values: about a quarter of a second on a busy core. A payload that would need more
	// is refused without being validated.
	MaxWork = 250000
)

// Schema is a compiled JSON Schema.
type Schema struct {
	s *jsonschema.Schema
	// onePass is the schema compiled for the one-pass check (onepass.go); nil when it
	// uses a keyword that check does not apply.
	onePass *node
}

// Compile parses, bounds and compiles a schema document (draft 2020-12 unless it says
// otherwise).
func Compile(doc []byte) (*Schema, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("schema is not valid JSON: %w", err)
	}
	if depth(v, 0) > MaxDepth {
		return nil, fmt.Errorf("schema nests objects and arrays more than %d levels deep", MaxDepth)
	}
	if b, ok := v.(bool); ok && !b {
		return nil, errors.New("schema is false: it refuses every payload")
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{}) // no external references
	c.AssertFormat()
	const url = "urn:consign:event-type"
	if err := c.AddResource(url, v); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema does not compile: %s", firstLine(err.Error()))
	}
	w := walker{state: map[*jsonschema.Schema]int{}}
	if _, err := w.nodes(s); err != nil {
		return nil, err
	}
	return &Schema{s: s, onePass: compileOnePass(s)}, nil
}

// depth returns how deeply v nests objects and arrays, stopping early past MaxDepth.
func depth(v any, d int) int {
	if d > MaxDepth {
		return d
	}
	deepest := d
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			deepest = max(deepest, depth(e, d+1))
		}
	case []any:
		for _, e := range v {
			deepest = max(deepest, depth(e, d+1))
		}
	}
	return deepest
}

// walker unfolds a compiled schema: state holds, per schema, -1 while it is being
// unfolded (so meeting it again is a cycle) and then the size of its unfolded tree.
type walker struct {
	state map[*jsonschema.Schema]int
}

// nodes returns the number of schemas in the tree s unfolds into, or an error when it
// refers to itself, resolves references only while validating, or unfolds past MaxNodes.
func (w *walker) nodes(s *jsonschema.Schema) (int, error) {
	if s == nil {
		return 0, nil
	}
	switch n, seen := w.state[s]; {
	case seen && n < 0:
		return 0, fmt.Errorf("schema refers to itself through $ref (at %s): recursive schemas are not accepted", location(s))
	case seen:
		return n, nil
	}
	if s.DynamicRef != nil || s.RecursiveRef != nil {
		return 0, fmt.Errorf("schema uses $dynamicRef or $recursiveRef (at %s), which event-type schemas do not support: use $ref", location(s))
	}
	w.state[s] = -1
	total := 1
	for _, c := range children(s) {
		n, err := w.nodes(c)
		if err != nil {
			return 0, err
		}
		if total += n; total > MaxNodes {
			return 0, fmt.Errorf("schema unfolds into more than %d schemas once its $refs are followed: refer to fewer definitions, or to each fewer times", MaxNodes)
		}
	}
	w.state[s] = total
	return total, nil
}

// children lists the subschemas s applies, its $ref's target among them.
func children(s *jsonschema.Schema) []*jsonschema.Schema {
	out := []*jsonschema.Schema{s.Ref, s.Not, s.If, s.Then, s.Else, s.PropertyNames, s.UnevaluatedProperties,
		s.Contains, s.Items2020, s.UnevaluatedItems, s.ContentSchema}
	out = append(out, s.AllOf...)
	out = append(out, s.AnyOf...)
	out = append(out, s.OneOf...)
	out = append(out, s.PrefixItems...)
	for _, c := range s.Properties {
		out = append(out, c)
	}
	for _, c := range s.PatternProperties {
		out = append(out, c)
	}
	for _, c := range s.DependentSchemas {
		out = append(out, c)
	}
	for _, d := range s.Dependencies {
		if c, ok := d.(*jsonschema.Schema); ok {
			out = append(out, c)
		}
	}
	for _, a := range []any{s.AdditionalProperties, s.Items, s.AdditionalItems} {
		switch a := a.(type) {
		case *jsonschema.Schema:
			out = append(out, a)
		case []*jsonschema.Schema:
			out = append(out, a...)
		}
	}
	return out
}

// location is where s is in the document, as a JSON pointer.
func location(s *jsonschema.Schema) string {
	if _, frag, ok := strings.Cut(s.Location, "#"); ok && frag != "" {
		return frag
	}
	return "/"
}

// Validate checks a JSON document against the schema and returns one readable message
// naming the first places that fail. A document the one-pass check passes is valid
// without being decoded; any other is decoded and validated the general way, which
// gives the message.
func (s *Schema) Validate(doc []byte) error {
	if s.onePass != nil && onePass(s.onePass, doc) {
		return nil
	}
	return s.validate(doc)
}

// ValidateFields is Validate that also reads, in the same pass over doc, the raw JSON
// values of the top-level members named in names: fields[i] is the value of names[i]
// (the last one when the name repeats), nil when doc has no such member. It does so
// when the one-pass check accepts doc, the usual case for a valid payload of a plain
// schema, and then returns true; otherwise (doc went the general way, valid or not) it
// returns false with the fields nil, and the caller finds the values another way.
// fields must be as long as names.
func (s *Schema) ValidateFields(doc []byte, names []string, fields [][]byte) (noted bool, err error) {
	clear(fields)
	if s.onePass != nil && onePassFields(s.onePass, doc, names, fields) {
		return true, nil
	}
	clear(fields)
	return false, s.validate(doc)
}

// ValidatePrefix reads the JSON value at the start of b (the rest of b, such as the rest
// of a request body, is not read) with the one-pass check and notes its top-level
// members as ValidateFields does. It returns the value's length when the check accepts
// it — valid JSON the schema accepts — and -1 when the value is invalid, the schema
// refuses it, or the check is unsure; the caller then finds the value's end another
// way and validates it with Validate, whose message is the one to report. verbatim says
// that encoding/json writes the value, as a json.RawMessage, exactly as it is: it holds
// no white space between tokens, no escape and none of <, >, & or U+2028/U+2029
// (false when unsure).
func (s *Schema) ValidatePrefix(b []byte, names []string, fields [][]byte) (n int, verbatim bool) {
	clear(fields)
	if s.onePass == nil {
		return -1, false
	}
	n, verbatim = prefix(s.onePass, b, names, fields)
	if n < 0 {
		clear(fields)
	}
	return n, verbatim
}

// validate applies the schema the general way: doc decoded whole.
func (s *Schema) validate(doc []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	w := work{left: MaxWork}
	if !w.apply(s.s, v) {
		return fmt.Errorf("too large for this schema to check: it would apply more than %d schemas to its values (a smaller payload, or a schema with fewer subschemas per array item, passes)", MaxWork)
	}
	err = s.s.Validate(v)
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		var msgs []string
		collect(ve, &msgs)
		if len(msgs) > 5 {
			msgs = append(msgs[:5], fmt.Sprintf("and %d more", len(msgs)-5))
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return err
}

// work counts, before a payload is validated, how many times schemas would be applied to
// its values, at most left times: a schema of a thousand subschemas applied to each item
// of a 60,000-item array would take minutes. It counts every subschema that may apply
// (each pattern property and both branches of a condition), so it overestimates.
type work struct{ left int }

// apply counts s applied to v and everything it applies to v's parts; false when the
// count passes the budget. It allocates nothing: it runs before every validation.
func (w *work) apply(s *jsonschema.Schema, v any) bool {
	if s == nil {
		return true
	}
	if w.left--; w.left < 0 {
		return false
	}
	if !w.all(v, s.Ref, s.Not, s.If, s.Then, s.Else) || !w.each(v, s.AllOf) || !w.each(v, s.AnyOf) || !w.each(v, s.OneOf) {
		return false
	}
	for _, c := range s.DependentSchemas {
		if !w.apply(c, v) {
			return false
		}
	}
	for _, d := range s.Dependencies {
		if c, ok := d.(*jsonschema.Schema); ok && !w.apply(c, v) {
			return false
		}
	}
	switch v := v.(type) {
	case map[string]any:
		additional, _ := s.AdditionalProperties.(*jsonschema.Schema)
		for k, e := range v {
			if !w.all(e, s.Properties[k], additional, s.UnevaluatedProperties) {
				return false
			}
			if s.PropertyNames != nil && !w.apply(s.PropertyNames, k) {
				return false
			}
			for _, c := range s.PatternProperties {
				if !w.apply(c, e) {
					return false
				}
			}
		}
	case []any:
		additional, _ := s.AdditionalItems.(*jsonschema.Schema)
		items, _ := s.Items.(*jsonschema.Schema)
		tuple, _ := s.Items.([]*jsonschema.Schema)
		for i, e := range v {
			if !w.all(e, s.Items2020, items, additional, s.Contains, s.UnevaluatedItems) {
				return false
			}
			if i < len(s.PrefixItems) && !w.apply(s.PrefixItems[i], e) {
				return false
			}
			if i < len(tuple) && !w.apply(tuple[i], e) {
				return false
			}
		}
	}
	return true
}

// all applies each of ss (nil ones are skipped) to v.
func (w *work) all(v any, ss ...*jsonschema.Schema) bool { return w.each(v, ss) }

func (w *work) each(v any, ss []*jsonschema.Schema) bool {
	for _, c := range ss {
		if !w.apply(c, v) {
			return false
		}
	}
	return true
}

// collect gathers the leaf causes: they say precisely which value is wrong.
func collect(ve *jsonschema.ValidationError, out *[]string) {
	if len(ve.Causes) == 0 {
		loc := "/" + strings.Join(ve.InstanceLocation, "/")
		*out = append(*out, fmt.Sprintf("at %s: %s", loc, ve.ErrorKind.LocalizedString(printer)))
		return
	}
	for _, c := range ve.Causes {
		collect(c, out)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

var printer = message.NewPrinter(language.English)
