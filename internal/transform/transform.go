// Package transform runs an endpoint's transformation: JavaScript that may rewrite a
// webhook before it is signed and sent (docs/delivery-pipeline.md, the shape stage).
//
// The code defines `function handler(webhook) { … return webhook }`, where webhook is
// {"type", "payload", "url", "method", "headers"}. The handler may change the payload,
// the URL, the method and the headers, or set `webhook.cancel = true` so that nothing
// is sent. The engine is goja (pure Go, no cgo): each code text is compiled once into a
// *goja.Program, kept in a small cache by its text, so every endpoint version with the
// same code shares it; runtimes that ran it are kept in a pool per program and reused,
// since building one costs far more than a small run. A run is bounded by Limit of CPU
// time through Runtime.Interrupt: it runs locked to its thread, and a watchdog reads
// that thread's CPU clock (Linux; elsewhere, and past 20×Limit of wall time on a machine
// too busy to give the run its CPU, wall time bounds it); goja has no memory limit, so the output is bounded in size (MaxPayload) and a run that
// builds a huge value is stopped by the same interrupt. A runtime whose run failed is
// dropped, not reused: an interrupted or throwing script may have left it half-changed.
// Between successful runs a runtime keeps the globals the code set, as in a browser tab.
// The payload goes in through decode (decode.go), which builds its JavaScript value in
// one pass over the bytes, four times faster than the engine's JSON.parse.
//
// An event type's version downgrades (`function downgrade(payload) { … return payload }`,
// CompileDowngrade and Script.Downgrade) run on the same engine with the same cache,
// pools and limits: they are the same kind of partner-facing code, run at the same
// place (the shape stage), and fail a delivery the same way.
package transform

import (
	"container/list"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"

	"github.com/consign-dev/consign"
)

// Limits of a transformation.
const (
	// MaxCode bounds the code's length in bytes.
	MaxCode = 64 << 10
	// MaxPayload bounds the payload a run returns, as JSON, in bytes.
	MaxPayload = 1 << 20
	// Limit is the most time one run may take.
	Limit = 50 * time.Millisecond
	// cached is how many compiled programs the cache keeps (least recently used goes).
	cached = 1024
)

// Webhook is what a transformation sees and returns.
type Webhook struct {
	Type    string            `json:"type"`
	Payload json.RawMessage   `json:"payload"`
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
	// Cancel, set by the code, says that nothing is to be sent.
	Cancel bool `json:"cancel,omitempty"`
}

// ErrTimeout is the error of a run that used more than Limit of CPU time.
var ErrTimeout = fmt.Errorf("the transformation ran longer than %v and was stopped", Limit)

// Script is a compiled transformation or downgrade, safe for concurrent use.
type Script struct {
	prog *goja.Program
	kind kind
	pool sync.Pool // of *vm
}

// kind is what a script's code defines: the function a run calls, and the name of the
// code in errors.
type kind struct {
	fn, noun, usage string
}

var (
	transformation = kind{fn: "handler", noun: "transformation", usage: "function handler(webhook) { … return webhook }"}
	downgrade      = kind{fn: "downgrade", noun: "downgrade", usage: "function downgrade(payload) { … return payload }"}
)

// vm is a runtime that ran the script's code, with the functions a run calls.
type vm struct {
	rt        *goja.Runtime
	handler   goja.Callable
	stringify goja.Callable
	buf       []byte // encode's, reused between runs
}

var cache = struct {
	sync.Mutex
	m   map[[32]byte]*list.Element // of *entry
	lru list.List
}{m: map[[32]byte]*list.Element{}}

type entry struct {
	key    [32]byte
	script *Script
}

// Compile returns the script of code, compiled once per distinct text. A syntax error,
// code longer than MaxCode or code that is empty comes back as an error a person can act
// on (line and column included).
func Compile(code string) (*Script, error) { return compile(code, transformation) }

// CompileDowngrade returns the script of a version's downgrade, code that defines
// function downgrade(payload) { … return payload }, with the errors of Compile.
func CompileDowngrade(code string) (*Script, error) { return compile(code, downgrade) }

func compile(code string, k kind) (*Script, error) {
	if strings.TrimSpace(code) == "" {
		return nil, fmt.Errorf("is empty: define %s", k.usage)
	}
	if len(code) > MaxCode {
		return nil, fmt.Errorf("is %d bytes; a %s may be at most %d", len(code), k.noun, MaxCode)
	}
	h := sha256.New()
	h.Write([]byte(k.fn))
	h.Write([]byte{0})
	h.Write([]byte(code))
	var key [32]byte
	h.Sum(key[:0])
	cache.Lock()
	if el, ok := cache.m[key]; ok {
		cache.lru.MoveToFront(el)
		s := el.Value.(*entry).script
		cache.Unlock()
		return s, nil
	}
	cache.Unlock()
	prog, err := goja.Compile(k.noun+".js", code, false)
	if err != nil {
		return nil, fmt.Errorf("does not compile: %s", strings.TrimPrefix(err.Error(), "SyntaxError: "))
	}
	s := &Script{prog: prog, kind: k}
	// A fresh runtime checks that the code defines handler, once: a code that cannot run
	// is refused where it is written, not at its first delivery.
	v, err := s.newVM()
	if err != nil {
		return nil, err
	}
	s.pool.Put(v)
	cache.Lock()
	defer cache.Unlock()
	if el, ok := cache.m[key]; ok {
		return el.Value.(*entry).script, nil
	}
	cache.m[key] = cache.lru.PushFront(&entry{key: key, script: s})
	if cache.lru.Len() > cached {
		last := cache.lru.Back()
		cache.lru.Remove(last)
		delete(cache.m, last.Value.(*entry).key)
	}
	return s, nil
}

// newVM builds a runtime and runs the code's top level in it, within Limit.
func (s *Script) newVM() (*vm, error) {
	rt := goja.New()
	v := &vm{rt: rt}
	w := watch(rt)
	_, err := rt.RunProgram(s.prog)
	w.stop()
	if err != nil {
		return nil, runError(s.kind, err)
	}
	var ok bool
	if v.handler, ok = goja.AssertFunction(rt.Get(s.kind.fn)); !ok {
		return nil, fmt.Errorf("defines no function %s: write %s", s.kind.fn, s.kind.usage)
	}
	js := rt.Get("JSON").ToObject(rt)
	v.stringify, _ = goja.AssertFunction(js.Get("stringify"))
	return v, nil
}

// Run runs the handler on in and returns the webhook it returned, checked: a payload
// that is JSON of at most MaxPayload bytes, a method POST or PUT, headers that may be
// sent and that Consign does not set itself, and a URL that checkURL (the destination
// rules of endpoint URLs; nil: any) accepts. A webhook with Cancel set is returned as
// it is. Any failure (a throw, a time-out, a return that is not an object, a value
// that breaks those rules) is an error that says what to fix.
func (s *Script) Run(in *Webhook, checkURL func(string) error) (*Webhook, error) {
	if s.kind != transformation {
		return nil, fmt.Errorf("a %s is not a transformation", s.kind.noun)
	}
	v, err := s.vm()
	if err != nil {
		return nil, err
	}
	out, err := v.run(in)
	if err != nil {
		return nil, err // v is dropped: the failed run may have left it half-changed
	}
	s.pool.Put(v)
	if out.Cancel {
		return out, nil
	}
	if err := check(out, checkURL); err != nil {
		return nil, err
	}
	return out, nil
}

// vm returns a runtime of the script from its pool, or a new one.
func (s *Script) vm() (*vm, error) {
	if v, _ := s.pool.Get().(*vm); v != nil {
		return v, nil
	}
	return s.newVM()
}

// Downgrade runs a version's downgrade on payload (JSON) and returns the payload it
// returned, as JSON of at most MaxPayload bytes. Any failure (a throw, a time-out, a
// return with no JSON form) is an error that says what to fix.
func (s *Script) Downgrade(payload []byte) ([]byte, error) {
	if s.kind != downgrade {
		return nil, fmt.Errorf("a %s is not a downgrade", s.kind.noun)
	}
	v, err := s.vm()
	if err != nil {
		return nil, err
	}
	out, err := v.downgrade(payload)
	if err != nil {
		return nil, err // v is dropped, as in Run
	}
	s.pool.Put(v)
	return out, nil
}

// guard ends a run: it stops the watchdog and turns a panic from the engine into the
// run's error. goja panics with a *goja.Exception or an interrupt when a value's own
// code (a getter, toJSON) throws while it is read.
func guard(w *watchdog, k kind, err *error) {
	w.stop()
	if r := recover(); r != nil {
		if e, ok := r.(error); ok {
			*err = runError(k, e)
			return
		}
		*err = fmt.Errorf("the %s failed: %v", k.noun, r)
	}
}

// downgrade calls the downgrade function within Limit and returns its result as JSON.
func (v *vm) downgrade(payload []byte) (out []byte, err error) {
	rt := v.rt
	defer guard(watch(rt), downgrade, &err)
	in, err := decode(rt, payload)
	if err != nil {
		return nil, fmt.Errorf("the payload could not be read: %v", err)
	}
	res, err := v.handler(goja.Undefined(), in)
	if err != nil {
		return nil, runError(downgrade, err)
	}
	if res == nil || goja.IsUndefined(res) {
		return nil, errors.New("the downgrade returned nothing: it must end with return payload")
	}
	text, err := v.json(res)
	if errors.Is(err, errTooBig) {
		return nil, fmt.Errorf("the downgraded payload is more than %d bytes as JSON; at most %[1]d", MaxPayload)
	}
	if err != nil {
		return nil, runError(downgrade, err)
	}
	if text == nil {
		return nil, fmt.Errorf("the downgrade returned %s, which has no JSON form", describe(res))
	}
	return text, nil
}

// errTooBig is json's error for a value whose JSON passes MaxPayload bytes.
var errTooBig = errors.New("too big")

// json returns the JSON form of val, as JSON.stringify gives it, in a new slice; nil
// when val has none (undefined, a function). It goes through encode, and through
// JSON.stringify for the values encode leaves to it.
func (v *vm) json(val goja.Value) ([]byte, error) {
	b, ok := encode(v.buf[:0], val)
	if !ok {
		js, err := v.stringify(goja.Undefined(), val)
		if err != nil || goja.IsUndefined(js) {
			return nil, err
		}
		b = []byte(js.String())
	} else if cap(b) <= 2*MaxPayload {
		v.buf = b
	}
	if len(b) > MaxPayload {
		return nil, errTooBig
	}
	return append([]byte(nil), b...), nil
}

// run calls the handler within Limit and reads its result.
func (v *vm) run(in *Webhook) (out *Webhook, err error) {
	rt := v.rt
	defer func() {
		if err != nil {
			out = nil
		}
	}()
	defer guard(watch(rt), transformation, &err)
	payload := goja.Undefined()
	if len(in.Payload) > 0 {
		if payload, err = decode(rt, in.Payload); err != nil {
			return nil, fmt.Errorf("the payload could not be read: %v", err)
		}
	}
	headers := rt.NewObject()
	for k, val := range in.Headers {
		_ = headers.Set(k, val)
	}
	wh := rt.NewObject()
	_ = wh.Set("type", in.Type)
	_ = wh.Set("payload", payload)
	_ = wh.Set("url", in.URL)
	_ = wh.Set("method", in.Method)
	_ = wh.Set("headers", headers)
	res, err := v.handler(goja.Undefined(), wh)
	if err != nil {
		return nil, runError(transformation, err)
	}
	if res == nil || goja.IsUndefined(res) || goja.IsNull(res) {
		return nil, errors.New("the handler returned nothing: it must end with return webhook")
	}
	obj, ok := res.(*goja.Object)
	if !ok || obj.ClassName() == "Array" || obj.ClassName() == "Function" {
		return nil, fmt.Errorf("the handler returned %s, not the webhook object: it must end with return webhook", describe(res))
	}
	out = &Webhook{Type: in.Type}
	out.Cancel = obj.Get("cancel") != nil && obj.Get("cancel").ToBoolean()
	if out.Cancel {
		return out, nil
	}
	p := obj.Get("payload")
	if p == nil || goja.IsUndefined(p) {
		return nil, errors.New("the returned webhook has no payload")
	}
	text, err := v.json(p)
	if errors.Is(err, errTooBig) {
		return nil, fmt.Errorf("the returned payload is more than %d bytes as JSON; at most %[1]d", MaxPayload)
	}
	if err != nil {
		return nil, runError(transformation, err)
	}
	if text == nil {
		return nil, fmt.Errorf("the returned payload is %s, which has no JSON form", describe(p))
	}
	out.Payload = json.RawMessage(text)
	if out.URL, err = stringField(obj, "url"); err != nil {
		return nil, err
	}
	if out.Method, err = stringField(obj, "method"); err != nil {
		return nil, err
	}
	h := obj.Get("headers")
	if h != nil && !goja.IsUndefined(h) && !goja.IsNull(h) {
		ho, ok := h.(*goja.Object)
		if !ok || ho.ClassName() == "Array" {
			return nil, fmt.Errorf("webhook.headers is %s; it must be an object of header names to strings", describe(h))
		}
		keys := ho.Keys()
		if len(keys) > consign.MaxHeaders {
			return nil, fmt.Errorf("webhook.headers has %d headers; at most %d", len(keys), consign.MaxHeaders)
		}
		out.Headers = make(map[string]string, len(keys))
		for _, k := range keys {
			hv := ho.Get(k)
			if _, isString := hv.Export().(string); !isString {
				return nil, fmt.Errorf("webhook.headers[%q] is %s; each header value must be a string", k, describe(hv))
			}
			out.Headers[k] = hv.String()
		}
	}
	return out, nil
}

// watchdog interrupts a run that has used Limit of its thread's CPU time, or
// maxWall of wall time (a machine so busy that the run cannot get its CPU). Checking CPU
// time, not only wall time, keeps a busy machine from failing transformations that
// would take a few milliseconds: a failed transformation is not retried.
type watchdog struct {
	rt      *goja.Runtime
	read    func() (time.Duration, bool)
	unlock  func()
	start   time.Time
	started time.Duration
	mu      sync.Mutex
	timer   *time.Timer
	done    bool
}

// maxWall bounds a run's wall time whatever CPU time it got.
const maxWall = 20 * Limit

// watch starts the watchdog of a run on rt, on the calling goroutine's thread.
func watch(rt *goja.Runtime) *watchdog {
	w := &watchdog{rt: rt, start: time.Now()}
	w.read, w.unlock = threadClock()
	var ok bool
	if w.started, ok = w.read(); !ok {
		w.read = nil
	}
	w.mu.Lock()
	w.timer = time.AfterFunc(Limit, w.check)
	w.mu.Unlock()
	return w
}

// check interrupts the run if it used its time, or looks again when it may have.
func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	wall := time.Since(w.start)
	if w.read != nil && wall < maxWall {
		if now, ok := w.read(); ok && now-w.started < Limit {
			w.timer = time.AfterFunc(max(Limit-(now-w.started), time.Millisecond), w.check)
			return
		}
	}
	w.rt.Interrupt(ErrTimeout)
}

// stop ends the watch: no interrupt comes after it returns, and one that came too late
// to stop the run is cleared.
func (w *watchdog) stop() {
	w.mu.Lock()
	w.done = true
	w.timer.Stop()
	w.mu.Unlock()
	w.rt.ClearInterrupt()
	w.unlock()
}

// check applies the rules of endpoint settings to what a run returned.
func check(w *Webhook, checkURL func(string) error) error {
	switch w.Method = strings.ToUpper(w.Method); w.Method {
	case http.MethodPost, http.MethodPut:
	default:
		return fmt.Errorf(`webhook.method is %q; it must be "POST" or "PUT"`, w.Method)
	}
	w.URL = consign.NormalizeURL(strings.TrimSpace(w.URL))
	if w.URL == "" {
		return errors.New("webhook.url is empty")
	}
	if checkURL != nil {
		if err := checkURL(w.URL); err != nil {
			return fmt.Errorf("webhook.url %q: %v", w.URL, err)
		}
	}
	h, err := consign.NormalizeHeaders(w.Headers)
	if err != nil {
		return fmt.Errorf("webhook.%v", err)
	}
	w.Headers = h
	return nil
}

// stringField returns obj[name], which must be a string.
func stringField(obj *goja.Object, name string) (string, error) {
	v := obj.Get(name)
	if s, ok := v.Export().(string); ok && v != nil {
		return s, nil
	}
	return "", fmt.Errorf("webhook.%s is %s; it must be a string", name, describe(v))
}

// describe names a JavaScript value's kind for an error message.
func describe(v goja.Value) string {
	switch {
	case v == nil || goja.IsUndefined(v):
		return "undefined"
	case goja.IsNull(v):
		return "null"
	}
	if o, ok := v.(*goja.Object); ok {
		switch o.ClassName() {
		case "Array":
			return "an array"
		case "Function":
			return "a function"
		}
		return "an object"
	}
	switch v.Export().(type) {
	case string:
		return fmt.Sprintf("the string %q", truncate(v.String(), 40))
	case bool:
		return "a boolean (" + v.String() + ")"
	case int64, float64:
		return "the number " + v.String()
	}
	return "a " + v.ExportType().String()
}

// runError words an error from the engine: a time-out, or the thrown value with where
// it was thrown.
func runError(k kind, err error) error {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		if errors.Is(asError(ie.Value()), ErrTimeout) {
			if k == transformation {
				return ErrTimeout
			}
			return timeoutError{k.noun}
		}
		return fmt.Errorf("the %s was stopped: %v", k.noun, ie.Value())
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return fmt.Errorf("the %s threw: %s", k.noun, truncate(ex.Error(), 500))
	}
	return fmt.Errorf("the %s failed: %s", k.noun, truncate(err.Error(), 500))
}

// timeoutError is ErrTimeout worded for code other than a transformation.
type timeoutError struct{ noun string }

func (e timeoutError) Error() string {
	return fmt.Sprintf("the %s ran longer than %v and was stopped", e.noun, Limit)
}

func (e timeoutError) Is(target error) bool { return target == ErrTimeout }

func asError(v any) error {
	if e, ok := v.(error); ok {
		return e
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
