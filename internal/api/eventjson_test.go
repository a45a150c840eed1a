//go:build !consign_stdlib

package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/ingest"
	"github.com/consign-dev/consign/internal/store/sqlite"
)

var payloads = []string{
	`{"order_id":1001,"tracking":"1Z999"}`,
	`{ "order_id" : 1001, "note": "two words" }`,
	"{\n\t\"a\": [1, 2.5e-3, -0, true, false, null]\r\n}",
	`{"html":"<b>&amp;</b>"}`,
	`{"sep":"a` + "\u2028" + `b` + "\u2029" + `","euro":"€","é":"ü"}`,
	`{"esc":"quote \" backslash \\ slash \/ \u00e9 \ud83d\ude00 \n"}`,
	`"just a string"`,
	`[]`,
	`12345678901234567890`,
	`{"nested":{"a":{"b":{"c":[{"d":[]}]}}}}`,
}

func TestWriteEventsMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, time.November, 23, 13, 45, 1, 123_000_000, time.UTC)
	var events []*consign.Event
	for i, p := range payloads {
		e := &consign.Event{ID: consign.NewID(consign.PrefixEvent, created), OrgID: "org_1", Type: "order.created",
			Payload: json.RawMessage(p), CreatedAt: created.Add(time.Duration(i) * time.Millisecond)}
		switch i % 3 {
		case 1:
			e.IdempotencyKey, e.OrderingKey = "order-1001", "sku/<42>&co"
		case 2:
			e.IdempotencyKey, e.OrderingKey = "ключ \"quoted\"\t\x7f", "bad utf-8 \xff"
		}
		events = append(events, e)
	}
	for _, e := range events {
		want, got := httptest.NewRecorder(), httptest.NewRecorder()
		require.NoError(t, writeJSON(want, http.StatusAccepted, eventView(e)))
		require.NoError(t, writeEvent(got, http.StatusAccepted, e, false))
		requireSameReply(t, want, got)
	}
	views := make([]event, len(events))
	res := make([]ingest.Result, len(events))
	for i, e := range events {
		views[i] = eventView(e)
		res[i] = ingest.Result{Event: e, Duplicate: i%4 == 3}
	}
	want := httptest.NewRecorder()
	require.NoError(t, writeJSON(want, http.StatusAccepted, map[string]any{"data": views}))
	// Without verbatim marks, and with them as the payloads' check sets them: a
	// duplicate's payload (an earlier event's) is written the careful way whatever its mark.
	verbatim := make([]bool, len(events))
	for i, e := range events {
		verbatim[i] = isVerbatim(e.Payload) || res[i].Duplicate
	}
	for _, marks := range [][]bool{nil, verbatim, verbatim[:3]} {
		got := httptest.NewRecorder()
		require.NoError(t, writeEvents(got, http.StatusAccepted, res, marks))
		requireSameReply(t, want, got)
	}
}

// isVerbatim reports whether encoding/json writes the valid JSON value raw as it is.
func isVerbatim(raw []byte) bool {
	out, err := json.Marshal(json.RawMessage(raw))
	return err == nil && bytes.Equal(out, raw)
}

// FuzzWriteEvent: the reply is encoding/json's, for a payload written the careful way
// and for one the payload's check on the way in marked verbatim (a.b's schema takes any
// JSON, so the check reads every valid payload).
func FuzzWriteEvent(f *testing.F) {
	for _, p := range payloads {
		f.Add(p, "order-1001", "sku/<42>&co")
	}
	check := checkedPayloads(f)
	f.Fuzz(func(t *testing.T, payload, idempotencyKey, orderingKey string) {
		if !json.Valid([]byte(payload)) {
			return // payloads are validated on the way in
		}
		e := &consign.Event{ID: consign.NewID(consign.PrefixEvent, time.Now()), Type: "order.created", Payload: json.RawMessage(payload),
			IdempotencyKey: idempotencyKey, OrderingKey: orderingKey, CreatedAt: time.Now().UTC()}
		want := httptest.NewRecorder()
		require.NoError(t, writeJSON(want, http.StatusOK, eventView(e)))
		n, verbatim := check.ReadPayload(t.Context(), "a.b", []byte(payload), &ingest.EventInput{}, nil)
		for _, verbatim := range []bool{false, verbatim && n == len(payload)} {
			got := httptest.NewRecorder()
			require.NoError(t, writeEvent(got, http.StatusOK, e, verbatim))
			requireSameReply(t, want, got)
		}
	})
}

func requireSameReply(t *testing.T, want, got *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, want.Code, got.Code)
	require.Equal(t, want.Header(), got.Header())
	require.Equal(t, want.Body.String(), got.Body.String())
}

// decodeBodies are publish bodies, plain and unusual, valid and not.
func decodeBodies() []string {
	var bodies []string
	for _, p := range payloads {
		one := fmt.Sprintf(`{"type":"order.created","payload":%s,"idempotency_key":"k1","ordering_key":"o1"}`, p)
		bodies = append(bodies, one, `{"events":[`+one+`,`+one+`]}`)
	}
	bodies = append(bodies,
		``, ` `, `{}`, `{"events":[]}`, `{"events":null}`, `{"events":[null]}`, `{"events":[{}]}`, `[]`, `null`,
		` {"type" : "a.b" , "payload" : {} } `, `{"events": [ {"type":"a.b","payload":{}} ] }`+"\n",
		`{"Type":"a.b","payload":{}}`, `{"type":"a.b","type":"c.d","payload":{}}`, `{"type":"a.b","payload":{},"extra":1}`,
		`{"type":"a\u002eb","payload":{}}`, `{"type":"a.b","payload":null}`, `{"type":null,"payload":{}}`, `{"type":1,"payload":{}}`,
		`{"type":"a.b","payload":{}} {}`, `{"type":"a.b","payload":{}}x`, `{"type":"a.b","payload":{"a":01}}`,
		`{"type":"a.b","payload":{"a":1.}}`, `{"type":"a.b","payload":{"a":-}}`, `{"type":"a.b","payload":{"a":1e}}`,
		`{"type":"a.b","payload":{"a":"\x"}}`, `{"type":"a.b","payload":{"a":"\u12"}}`, `{"type":"a.b","payload":{"a":tru}}`,
		`{"type":"a.b","payload":[1,]}`, `{"type":"a.b","payload":{"a":1,}}`, `{"type":"a.b","payload":{"a" 1}}`,
		"{\"type\":\"a\tb\",\"payload\":{}}", "{\"type\":\"bad \xff utf-8\",\"payload\":{}}", `{"type":"a.b","payload":"\u0000"}`,
		`{"type":"a.b","payload":`+strings.Repeat("[", 200)+strings.Repeat("]", 200)+`}`,
		`{"type":"a.b","payload":{"a":"x"`, `{"events":[{"type":"a.b","payload":{}}`, `{"events":{"type":"a.b"}}`,
		`{"events":[{"type":"a.b","payload":{}}],"events":[]}`, "\ufeff{}",
	)
	// Long strings, read eight bytes at a time, with what ends that at every offset.
	for i := range 17 {
		pad := strings.Repeat("x", i)
		for _, tail := range []string{`\"y`, `\\`, `\u00e9`, "\x01", `\q`, "\xff", ""} {
			bodies = append(bodies, `{"type":"a.b","payload":{"note":"`+pad+tail+strings.Repeat("z", 20)+`"}}`)
		}
		bodies = append(bodies, `{"type":"a.b","payload":{"note":"`+pad)
	}
	return bodies
}

func TestDecodeEventMatchesDecode(t *testing.T) {
	t.Parallel()
	payloads := checkedPayloads(t)
	for _, body := range decodeBodies() {
		requireSameDecode(t, nil, body)
		requireSameDecode(t, payloads, body)
	}
}

// TestDecodeEventVerbatim: a payload its type's check accepted is marked verbatim when
// encoding/json writes it as it is, and only then; one read the reader's own way is not.
func TestDecodeEventVerbatim(t *testing.T) {
	t.Parallel()
	payloads := checkedPayloads(t)
	for _, tc := range []struct {
		body     string
		verbatim bool
	}{
		{`{"type":"order.created","payload":{"order_id":1001,"tracking":"1Z999"}}`, true},
		{`{"type":"a.b","payload":[1,"x",{"y":null}]}`, true},
		{`{"type":"order.created","payload":{"order_id":1001, "tracking":"1Z999"}}`, false},
		{`{"type":"order.created","payload":{"html":"<b>"}}`, false},
		{`{"type":"order.created","payload":{"q":"a\"b"}}`, false},
		{`{"type":"order.created","payload":{"euro":"€"}}`, false},
		{`{"type":"order.created","payload":[1]}`, false},               // refused by the schema: read as before
		{`{"payload":{"order_id":1001},"type":"order.created"}`, false}, // type after payload
		{`{"type":"order.unknown","payload":{"order_id":1001}}`, false}, // not in the catalog
	} {
		var in ingest.EventInput
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
		verbatim, err := decodeEvent(r, 1<<20, payloads, &in)
		require.NoError(t, err, tc.body)
		require.Equal(t, tc.verbatim, verbatim, tc.body)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, body := range decodeBodies() {
		f.Add(body)
	}
	payloads := checkedPayloads(f)
	f.Fuzz(func(t *testing.T, body string) {
		requireSameDecode(t, nil, body)
		requireSameDecode(t, payloads, body)
	})
}

// checkedPayloads is the ingest service's payload check over a real store, with schemas
// for the types of decodeBodies: order.created's takes objects and strings (and has
// business keys), a.b's takes any JSON.
func checkedPayloads(tb testing.TB) payloadReader {
	tb.Helper()
	st, err := sqlite.Open(tb.Context(), tb.TempDir())
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	for _, et := range []*consign.EventType{
		{Name: "order.created", Schema: json.RawMessage(`{"type":["object","string"],"properties":{"order_id":{"type":"integer"}}}`),
			Keys: []string{"/order_id", "/tracking"}},
		{Name: "a.b", Schema: json.RawMessage(`true`)},
	} {
		et.CreatedAt, et.UpdatedAt = now, now
		require.NoError(tb, st.EventTypeInsert(tb.Context(), et))
	}
	svc := ingest.New(st, ingest.Config{})
	tb.Cleanup(svc.Close)
	return svc
}

// requireSameDecode checks that decodeEvent and decodeBatch, with payloads checked in
// place by payloads or not (nil), read body as decode does; and that a payload marked
// verbatim is one encoding/json writes as it is.
func requireSameDecode(t *testing.T, payloads payloadReader, body string) {
	request := func() *http.Request {
		return httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	}
	var want, got ingest.EventInput
	wantErr := decode(request(), &want)
	verbatim, gotErr := decodeEvent(request(), 1<<20, payloads, &got)
	require.Equal(t, fmt.Sprint(wantErr), fmt.Sprint(gotErr), "body %q", body)
	require.Equal(t, want, asSent(got), "body %q", body)
	require.True(t, !verbatim || isVerbatim(got.Payload), "body %q: payload marked verbatim", body)

	var wantBatch batchInput
	wantErr = decode(request(), &wantBatch)
	gotBatch, gotErr := decodeBatch(request(), 1<<20, payloads)
	require.Equal(t, fmt.Sprint(wantErr), fmt.Sprint(gotErr), "body %q", body)
	if gotErr != nil {
		return
	}
	defer gotBatch.release()
	require.Equal(t, len(wantBatch.Events), len(gotBatch.Events), "body %q", body)
	require.Equal(t, wantBatch.Events == nil, gotBatch.Events == nil, "body %q: null or not", body)
	for i := range wantBatch.Events {
		require.Equal(t, wantBatch.Events[i], asSent(gotBatch.Events[i]), "body %q", body)
		require.True(t, i >= len(gotBatch.verbatim) || !gotBatch.verbatim[i] || isVerbatim(gotBatch.Events[i].Payload),
			"body %q: payload %d marked verbatim", body, i)
	}
}

// asSent is in's fields as a client sent them, without what the payload's check noted.
func asSent(in ingest.EventInput) ingest.EventInput {
	return ingest.EventInput{Type: in.Type, Payload: in.Payload, IdempotencyKey: in.IdempotencyKey, OrderingKey: in.OrderingKey}
}

func BenchmarkPublishJSON(b *testing.B) {
	payload := `{"order_id":1001,"note":"` + strings.Repeat("x", 1000) + `"}`
	var body bytes.Buffer
	body.WriteString(`{"events":[`)
	for i := range 500 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"type":"order.created","payload":%s}`, payload)
	}
	body.WriteString(`]}`)
	created := time.Now().UTC()
	events := make([]*consign.Event, 500)
	for i := range events {
		events[i] = &consign.Event{ID: consign.NewID(consign.PrefixEvent, created), Type: "order.created",
			Payload: json.RawMessage(payload), CreatedAt: created}
	}
	views := make([]event, len(events))
	res := make([]ingest.Result, len(events))
	verbatim := make([]bool, len(events))
	for i, e := range events {
		views[i] = eventView(e)
		res[i], verbatim[i] = ingest.Result{Event: e}, true
	}
	request := func() *http.Request {
		return httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body.Bytes()))
	}
	b.Run("decode/encoding-json", func(b *testing.B) {
		for b.Loop() {
			var in batchInput
			require.NoError(b, decode(request(), &in))
		}
	})
	b.Run("decode/batch", func(b *testing.B) {
		for b.Loop() {
			in, err := decodeBatch(request(), 1<<20, nil)
			require.NoError(b, err)
			in.release()
		}
	})
	payloads := checkedPayloads(b)
	b.Run("decode/batch-checked", func(b *testing.B) {
		for b.Loop() {
			in, err := decodeBatch(request(), 1<<20, payloads)
			require.NoError(b, err)
			in.release()
		}
	})
	b.Run("reply/encoding-json", func(b *testing.B) {
		for b.Loop() {
			require.NoError(b, writeJSON(httptest.NewRecorder(), http.StatusAccepted, map[string]any{"data": views}))
		}
	})
	b.Run("reply/events", func(b *testing.B) {
		for b.Loop() {
			require.NoError(b, writeEvents(httptest.NewRecorder(), http.StatusAccepted, res, nil))
		}
	})
	b.Run("reply/events-verbatim", func(b *testing.B) {
		for b.Loop() {
			require.NoError(b, writeEvents(httptest.NewRecorder(), http.StatusAccepted, res, verbatim))
		}
	})
}

// TestPlain8 checks the eight-byte test against its byte-by-byte definition, for every
// byte value in every position and for random words.
func TestPlain8(t *testing.T) {
	t.Parallel()
	want := func(b []byte) bool {
		for _, c := range b {
			if c == '"' || c == '\\' || c < 0x20 {
				return false
			}
		}
		return true
	}
	check := func(b []byte) {
		require.Equal(t, want(b), plain8(binary.LittleEndian.Uint64(b)), "%q", b)
	}
	for pos := range 8 {
		for c := range 256 {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			check(b)
			b[(pos+3)%8] = 0xff // a high byte next to it must not hide or fake a match
			check(b)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 8)
	for range 100000 {
		binary.LittleEndian.PutUint64(b, r.Uint64())
		check(b)
	}
}
