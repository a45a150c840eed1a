//go:build !consign_stdlib

package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/ingest"
)

// Publishing is the hot path of the API: a batch is up to a thousand events, each with its
// payload. encoding/json scans every payload twice on the way in (once to find the end of
// the body, once to decode it) and once more on the way out (it compacts and re-validates
// every json.RawMessage). This file reads and writes the publishing bodies in one pass,
// for the bodies clients actually send; anything unusual (escapes in strings, unknown or
// repeated fields, invalid JSON) goes through encoding/json, so the result and every error
// message stay those of decode and writeJSON. Builds tagged consign_stdlib use decode and
// writeJSON themselves (eventjson_stdlib.go).
//
// A payload is read once. The event's "type" comes before its "payload" in the bodies
// clients send; when it does, the reader hands the payload, where it stands in the body,
// to the type's own check (payloadReader: ingest.Service.ReadPayload), which reads its
// syntax and schema together and notes the business keys, so that neither this reader
// nor Publish reads it again. When that check does not accept the payload (no schema,
// invalid, refused by the schema, or unsure), the reader validates the payload's syntax
// itself as before: invalid JSON still makes the body go through encoding/json and get
// its message, and a payload the schema refuses is reported by Publish as before. The
// check also says whether encoding/json would write the payload exactly as it is
// (verbatim); the reply then copies it without looking at it again.

// decodeEvent reads the body of a single-event publish as decode would; limit is the
// largest body the route accepts. payloads, when not nil, checks the payload in place;
// verbatim then says that the reply may copy it as it is.
func decodeEvent(r *http.Request, limit int64, payloads payloadReader, in *ingest.EventInput) (verbatim bool, err error) {
	buf := buffers.get()
	defer buffers.put(buf)
	body, err := readBody(r, limit, buf)
	if err != nil {
		return false, decodeError(err)
	}
	p := jsonParser{b: body, payloads: payloads, ctx: r.Context()}
	p.space()
	if p.event(in) && p.end() {
		return p.verbatim, nil
	}
	*in = ingest.EventInput{}
	return false, decodeFrom(bytes.NewReader(body), in)
}

// decodeBatch reads the body of a batch publish as decode would, into a decodedBatch
// that the caller gives back with release; limit is the largest body the route
// accepts. payloads, when not nil, checks each payload in place.
func decodeBatch(r *http.Request, limit int64, payloads payloadReader) (*decodedBatch, error) {
	buf := buffers.get()
	defer buffers.put(buf)
	body, err := readBody(r, limit, buf)
	if err != nil {
		return nil, decodeError(err)
	}
	in := batches.Get().(*decodedBatch)
	p := jsonParser{b: body, payloads: payloads, ctx: r.Context()}
	if p.batch(in) && p.end() {
		return in, nil
	}
	in.clear()
	in.batchInput = batchInput{} // as decode leaves it: no events for a body without any
	if err := decodeFrom(bytes.NewReader(body), &in.batchInput); err != nil {
		in.release()
		return nil, err
	}
	return in, nil
}

// decodedBatch is a batch as decodeBatch read it: its events, and verbatim[i] when the reply may copy the
// payload of the i-th as it is (decodeEvent's verbatim). It comes from batches and is
// given back with release once the reply is written: a batch's slices were a tenth of
// what it allocated.
type decodedBatch struct {
	batchInput
	verbatim []bool
}

var batches = sync.Pool{New: func() any { return new(decodedBatch) }}

// clear empties b, keeping its room; nothing it held stays reachable through it (the
// payloads live on in their events).
func (b *decodedBatch) clear() {
	clear(b.Events)
	b.Events, b.verbatim = b.Events[:0], b.verbatim[:0]
}

// release gives b back to batches, unless it holds room for more events than a batch
// may have (a body of many tiny events, refused by Publish).
func (b *decodedBatch) release() {
	b.clear()
	if cap(b.Events) <= consign.MaxBatch {
		batches.Put(b)
	}
}

// readBody reads the whole request body into *into, up to limit (the body's reader
// enforces the limit itself). The buffer grows with the bytes that arrive (doubling), not
// with the Content-Length a client announces: one that announces 16 MiB and sends a byte
// would otherwise have the server hold 16 MiB for it. A small body's announced length is
// trusted, to read it without growing. The result is valid until *into is given back to
// buffers.
func readBody(r *http.Request, limit int64, into *[]byte) ([]byte, error) {
	buf := bytes.NewBuffer((*into)[:0])
	if n := min(r.ContentLength, limit, trustedLength); n > 0 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(r.Body)
	*into = buf.Bytes()
	return buf.Bytes(), err
}

// trustedLength is the most of a body's Content-Length readBody reserves before the bytes
// arrive.
const trustedLength = 64 << 10

// bufferPool recycles the buffers publish bodies are read into and replies are built in:
// nothing decoded from a body refers to it (payloads are cloned, strings copied, and
// encoding/json copies what it decodes), and a Write does not keep what it is given. A
// batch's body and its reply were half of what a publish allocated. Buffers larger than
// maxPooledBuffer are left to the collector.
type bufferPool struct{ pool sync.Pool }

const maxPooledBuffer = 4 << 20

var buffers bufferPool

func (p *bufferPool) get() *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

func (p *bufferPool) put(b *[]byte) {
	if cap(*b) <= maxPooledBuffer {
		*b = (*b)[:0]
		p.pool.Put(b)
	}
}

// jsonParser reads the publishing bodies. Each method reports whether the input had the
// expected, plain form; on false the caller starts over with encoding/json.
type jsonParser struct {
	b []byte
	i int
	// payloads, when set, checks each payload in place (decodeEvent); ctx is the
	// request's.
	payloads payloadReader
	ctx      context.Context
	// verbatim: the last event's payload was found verbatim by payloads.
	verbatim bool
	// lastType is the type of the event read last; prev is that event in a batch.
	lastType string
	prev     *ingest.EventInput
}

// batch reads {"events": [event, ...]} into in, which is empty.
func (p *jsonParser) batch(in *decodedBatch) bool {
	p.space()
	if !p.byte('{') {
		return false
	}
	p.space()
	if key, ok := p.key(); !ok || string(key) != "events" || !p.byte('[') {
		return false
	}
	if in.Events == nil {
		in.Events = make([]ingest.EventInput, 0, 16) // not nil: [] is no events, not null
	}
	p.space()
	if !p.byte(']') {
		for {
			in.Events = append(in.Events, ingest.EventInput{})
			if n := len(in.Events); n > 1 {
				p.prev = &in.Events[n-2]
			}
			if !p.event(&in.Events[len(in.Events)-1]) {
				return false
			}
			in.verbatim = append(in.verbatim, p.verbatim)
			p.space()
			if p.byte(']') {
				break
			}
			if !p.byte(',') {
				return false
			}
			p.space()
		}
	}
	p.space()
	return p.byte('}')
}

// event reads one event object with fields of EventInput, each at most once.
func (p *jsonParser) event(in *ingest.EventInput) bool {
	if !p.byte('{') {
		return false
	}
	p.space()
	if p.byte('}') {
		return true
	}
	var seen [4]bool
	p.verbatim = false
	for {
		key, ok := p.key()
		if !ok {
			return false
		}
		var field int
		switch string(key) {
		case "type":
			field = 0
			var typ []byte
			if typ, ok = p.rawString(); ok {
				// The events of a batch mostly share their type: one string for them.
				if string(typ) != p.lastType {
					p.lastType = string(typ)
				}
				in.Type = p.lastType
			}
		case "payload":
			field = 1
			start := p.i
			if seen[0] && p.payloads != nil {
				if n, verbatim := p.payloads.ReadPayload(p.ctx, in.Type, p.b[p.i:], in, p.prev); n > 0 {
					p.i += n
					p.verbatim = verbatim
					in.Payload = bytes.Clone(p.b[start:p.i])
					break
				}
			}
			if ok = p.value(0); ok {
				// A copy: a payload outlives the request (the dispatcher may hold it while
				// its delivery waits) and must not keep the whole body alive.
				in.Payload = bytes.Clone(p.b[start:p.i])
			}
		case "idempotency_key":
			field = 2
			in.IdempotencyKey, ok = p.string()
		case "ordering_key":
			field = 3
			in.OrderingKey, ok = p.string()
		default:
			return false
		}
		if !ok || seen[field] {
			return false
		}
		seen[field] = true
		p.space()
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
		p.space()
	}
}

// end reports whether only white space is left.
func (p *jsonParser) end() bool {
	p.space()
	return p.i == len(p.b)
}

func (p *jsonParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c if it comes next.
func (p *jsonParser) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// key reads an object key and its colon; the key is the body's bytes.
func (p *jsonParser) key() ([]byte, bool) {
	k, ok := p.rawString()
	if !ok {
		return nil, false
	}
	p.space()
	if !p.byte(':') {
		return nil, false
	}
	p.space()
	return k, true
}

// string reads a string without escapes or control characters, in valid UTF-8: then its
// value is its bytes, as encoding/json would decode it.
func (p *jsonParser) string() (string, bool) {
	s, ok := p.rawString()
	return string(s), ok
}

// rawString is string's value as the bytes of the body that hold it.
func (p *jsonParser) rawString() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// maxDepth bounds the nesting of a payload read here; deeper ones go to encoding/json.
const maxDepth = 100

// value skips one valid JSON value. It accepts no more than encoding/json does.
func (p *jsonParser) value(depth int) bool {
	if p.i >= len(p.b) || depth > maxDepth {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		p.space()
		if p.byte('}') {
			return true
		}
		for {
			if !p.skipString() {
				return false
			}
			p.space()
			if !p.byte(':') {
				return false
			}
			p.space()
			if !p.value(depth + 1) {
				return false
			}
			p.space()
			if p.byte('}') {
				return true
			}
			if !p.byte(',') {
				return false
			}
			p.space()
		}
	case c == '[':
		p.i++
		p.space()
		if p.byte(']') {
			return true
		}
		for {
			if !p.value(depth + 1) {
				return false
			}
			p.space()
			if p.byte(']') {
				return true
			}
			if !p.byte(',') {
				return false
			}
			p.space()
		}
	case c == '"':
		return p.skipString()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	}
	return false
}

// skipString skips a valid JSON string, escapes included.
func (p *jsonParser) skipString() bool {
	if !p.byte('"') {
		return false
	}
	for p.i < len(p.b) {
		// Eight bytes at a time while none of them ends the string, starts an
		// escape or is a control character: payloads are mostly long plain strings.
		for p.i+8 <= len(p.b) && plain8(binary.LittleEndian.Uint64(p.b[p.i:])) {
			p.i += 8
		}
		if p.i >= len(p.b) {
			break
		}
		c := p.b[p.i]
		p.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if p.i >= len(p.b) {
				return false
			}
			e := p.b[p.i]
			p.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if p.i+4 > len(p.b) {
					return false
				}
				for _, h := range p.b[p.i : p.i+4] {
					if !isHex(h) {
						return false
					}
				}
				p.i += 4
			default:
				return false
			}
		}
	}
	return false
}

// plain8 reports that none of the eight bytes of x is '"', '\\' or below 0x20. Each test is
// the classic "has a zero byte" bit trick, exact as to whether any byte matches:
// (v - 0x01…01) &^ v & 0x80…80 is non-zero exactly when some byte of v is zero, and
// (x - 0x20…20) &^ x & 0x80…80 exactly when some byte of x is below 0x20.
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	found := (quote - ones) &^ quote
	found |= (backslash - ones) &^ backslash
	found |= (x - ones*0x20) &^ x
	return found&highs == 0
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *jsonParser) number() bool {
	p.byte('-')
	switch {
	case p.byte('0'):
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.byte('.') && !p.digits() {
		return false
	}
	if p.byte('e') || p.byte('E') {
		if !p.byte('+') {
			p.byte('-')
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

// digits skips one or more digits.
func (p *jsonParser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

func (p *jsonParser) literal(s string) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		return false
	}
	p.i += len(s)
	return true
}

// writeEvent writes one event as writeJSON(w, status, eventView(e)) would; verbatim says
// that encoding/json writes its payload as it is (decodeEvent).
func writeEvent(w http.ResponseWriter, status int, e *consign.Event, verbatim bool) error {
	buf := buffers.get()
	defer buffers.put(buf)
	b := append(appendEvent(slices.Grow((*buf)[:0], len(e.Payload)+256), e, verbatim), '\n')
	*buf = b
	return writeBytes(w, status, b)
}

// writeEvents writes the results' events as writeJSON(w, status, map[string]any{"data":
// views}) would, views being their eventView; verbatim[i] says that encoding/json writes
// the payload of the i-th as it is, unless that is a duplicate (an earlier event's
// payload); missing ones are false.
func writeEvents(w http.ResponseWriter, status int, res []ingest.Result, verbatim []bool) error {
	n := 16
	for _, x := range res {
		n += len(x.Event.Payload) + 256
	}
	buf := buffers.get()
	defer buffers.put(buf)
	b := append(slices.Grow((*buf)[:0], n), `{"data":[`...)
	for i, x := range res {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEvent(b, x.Event, i < len(verbatim) && verbatim[i] && !x.Duplicate)
	}
	b = append(b, "]}\n"...)
	*buf = b
	return writeBytes(w, status, b)
}

func writeBytes(w http.ResponseWriter, status int, b []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err := w.Write(b)
	return err
}

// appendEvent appends the JSON of eventView(e) as encoding/json writes it; verbatim says
// that encoding/json writes e's payload as it is.
func appendEvent(b []byte, e *consign.Event, verbatim bool) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"payload":`...)
	if verbatim {
		b = append(b, e.Payload...)
	} else {
		b = appendRaw(b, e.Payload)
	}
	b = append(b, `,"idempotency_key":`...)
	b = appendOptional(b, e.IdempotencyKey)
	b = append(b, `,"ordering_key":`...)
	b = appendOptional(b, e.OrderingKey)
	b = append(b, `,"created_at":"`...)
	b = e.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// appendOptional appends s, or null when it is empty.
func appendOptional(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// appendString appends s quoted. Plain printable ASCII is copied; anything else is
// quoted by encoding/json, which escapes <, > and & and repairs invalid UTF-8.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain reports whether encoding/json copies c unchanged inside a string.
func plain(c byte) bool {
	return c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// appendRaw appends a JSON value as encoding/json writes a json.RawMessage: compacted,
// with <, >, &, U+2028 and U+2029 escaped. A value that needs neither is copied.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	if !compactSafe(raw) {
		q, err := json.Marshal(raw)
		if err != nil {
			return append(b, raw...) // payloads are validated on the way in
		}
		return append(b, q...)
	}
	return append(b, raw...)
}

// compactSafe reports whether encoding/json would copy the valid JSON value raw
// unchanged: no white space outside strings, and none of <, >, & or the first byte of
// U+2028 and U+2029 anywhere.
func compactSafe(raw []byte) bool {
	for _, c := range []byte("<>&\xe2") {
		if bytes.IndexByte(raw, c) >= 0 {
			return false
		}
	}
	spaced := false
	for _, c := range []byte(" \t\r\n") {
		spaced = spaced || bytes.IndexByte(raw, c) >= 0
	}
	if !spaced {
		return true
	}
	in := false
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			in = !in
		case '\\':
			i++ // an escape, inside a string: the next byte is not a quote that ends it
		case ' ', '\t', '\r', '\n':
			if !in {
				return false
			}
		}
	}
	return true
}
