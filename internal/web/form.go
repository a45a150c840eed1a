package web

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consign-dev/consign"
)

// fieldErrors are the validation errors of a form, by field name as the API names them
// ("url", "retry.schedule"…), in the order they were found.
type fieldErrors []consign.FieldError

// Get returns the messages about a field (or any field under it: "retry" finds
// "retry.schedule"), joined.
func (f fieldErrors) Get(field string) string {
	var msgs []string
	for _, e := range f {
		if e.Field == field || strings.HasPrefix(e.Field, field+".") {
			msgs = append(msgs, e.Message)
		}
	}
	return strings.Join(msgs, "; ")
}

// formErrors turns a validation error into field errors to show on the form; ok is
// false for any other error.
func formErrors(err error) (fieldErrors, bool) {
	var e *consign.Error
	if !errors.As(err, &e) || (e.Code != consign.EINVALID && e.Code != consign.EBADREQUEST) {
		return nil, false
	}
	if len(e.Fields) == 0 {
		return fieldErrors{{Field: "", Message: e.Message}}, true
	}
	return fieldErrors(e.Fields), true
}

// formParser reads typed values from a form and collects what it cannot read, with the
// field names the API uses, so the form shows parse and validation errors alike.
type formParser struct {
	errs consign.Validation
	bad  bool
}

func (p *formParser) float(field, s string) float64 {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		p.fail(field, "must be a number")
	}
	return f
}

func (p *formParser) int(field, s string) int {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		p.fail(field, "must be a whole number")
	}
	return n
}

func (p *formParser) duration(field, s string) consign.Duration {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	d, err := consign.ParseDuration(s)
	if err != nil {
		p.fail(field, `must be a duration such as "30s", "5m", "72h" or "3d"`)
	}
	return consign.Duration(d)
}

// durations reads a comma- or space-separated list of durations.
func (p *formParser) durations(field, s string) []consign.Duration {
	var out []consign.Duration
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		d, err := consign.ParseDuration(part)
		if err != nil {
			p.fail(field, fmt.Sprintf("%q is not a duration; use values such as 5s, 30s, 2m", part))
			continue
		}
		out = append(out, consign.Duration(d))
	}
	return out
}

// time reads an <input type="datetime-local"> value, taken as UTC.
func (p *formParser) time(field, s string) *time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return &t
		}
	}
	p.fail(field, "must be a date and time such as 2026-11-23T12:00 (UTC)")
	return nil
}

// headers reads "Name: value" lines.
func (p *formParser) headers(field, s string) map[string]string {
	h := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "" {
			p.fail(field, fmt.Sprintf("%q: write one header per line as Name: value", line))
			continue
		}
		h[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	return h
}

// list reads a comma- or space-separated list of words.
func list(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

func (p *formParser) fail(field, msg string) {
	p.errs.Add(field, "%s", msg)
	p.bad = true
}

// err returns the parse errors, or nil.
func (p *formParser) err() error {
	if !p.bad {
		return nil
	}
	return p.errs.Err()
}

// headersText writes headers as the form shows them: "Name: value" lines, sorted.
func headersText(h map[string]string) string {
	lines := make([]string, 0, len(h))
	for k, v := range h {
		lines = append(lines, k+": "+v)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
