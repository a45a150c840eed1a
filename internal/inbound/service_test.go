package inbound_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/brokertest"
	"github.com/consign-dev/consign/internal/inbound"
	"github.com/consign-dev/consign/internal/ingest"
	"github.com/consign-dev/consign/internal/secretbox"
	"github.com/consign-dev/consign/internal/sender"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/sqlite"
)

const (
	waitFor = 10 * time.Second
	tick    = 5 * time.Millisecond
)

// fakePub stands in for ingest: it keeps events by idempotency key, as ingest does, and
// can be told to fail.
type fakePub struct {
	mu      sync.Mutex
	byKey   map[string]*consign.Event
	calls   []ingest.EventInput
	largest int // the most events of one Publish
	emitted []map[string]any
	// fail, if set, decides the outcome of a Publish: an error to return, and whether the
	// event is made anyway (a crash after the commit, before the reply).
	fail func(in ingest.EventInput) (err error, commitAnyway bool)
}

func newFakePub() *fakePub { return &fakePub{byKey: map[string]*consign.Event{}} }

func (p *fakePub) Publish(_ context.Context, orgID string, in []ingest.EventInput) ([]ingest.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, in...)
	p.largest = max(p.largest, len(in))
	// All or none, as ingest: the first failure decides.
	var failErr error
	commit := true
	if p.fail != nil {
		for _, x := range in {
			if err, c := p.fail(x); err != nil {
				failErr, commit = err, c
				break
			}
		}
	}
	if failErr != nil && !commit {
		return nil, failErr
	}
	out := make([]ingest.Result, len(in))
	for i, x := range in {
		if ev, ok := p.byKey[x.IdempotencyKey]; ok {
			out[i] = ingest.Result{Event: ev, Duplicate: true}
			continue
		}
		ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, time.Now()), OrgID: orgID, Type: x.Type, Payload: x.Payload,
			IdempotencyKey: x.IdempotencyKey}
		p.byKey[x.IdempotencyKey] = ev
		out[i] = ingest.Result{Event: ev}
	}
	if failErr != nil {
		return nil, failErr
	}
	return out, nil
}

func (p *fakePub) Emit(_ context.Context, orgID, typ string, payload any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := payload.(map[string]any)
	m["_type"], m["_org"] = typ, orgID
	p.emitted = append(p.emitted, m)
	return nil
}

func (p *fakePub) events() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byKey)
}

func (p *fakePub) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

func (p *fakePub) emits() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]any(nil), p.emitted...)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is a Service over a real SQLite store with one org and the built-in catalog.
type harness struct {
	tb  testing.TB
	st  *sqlite.DB
	box *secretbox.Box
	pub *fakePub
	org string
	dir string
}

func newHarness(tb testing.TB) *harness {
	tb.Helper()
	dir := tb.TempDir()
	st, err := sqlite.Open(tb.Context(), dir)
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, st.Close()) })
	require.NoError(tb, st.EventTypeEnsure(tb.Context(), consign.BuiltinEventTypes()))
	now := time.Now().UTC().Truncate(time.Millisecond)
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleBoth, CreatedAt: now, UpdatedAt: now}
	require.NoError(tb, st.OrgInsert(tb.Context(), org))
	key, err := secretbox.NewKey()
	require.NoError(tb, err)
	box, err := secretbox.New(key)
	require.NoError(tb, err)
	return &harness{tb: tb, st: st, box: box, pub: newFakePub(), org: org.ID, dir: dir}
}

// service builds a Service on the harness's store; run starts it until the test ends
// (or the returned stop is called).
func (h *harness) service(pub *fakePub, mods ...func(*inbound.Config)) *inbound.Service {
	cfg := inbound.Config{InsecureTargets: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mods {
		m(&cfg)
	}
	return inbound.New(h.st, h.box, pub, sender.New(sender.Config{InsecureTargets: true, MaxResponseBody: 8 << 20}), cfg)
}

func run(tb testing.TB, s *inbound.Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	tb.Cleanup(stop)
	return stop
}

// decodeInto returns a PATCH decoder of body, as the API's.
func decodeInto(body string) func(*inbound.SourceInput) error {
	return func(in *inbound.SourceInput) error {
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		return dec.Decode(in)
	}
}

func create(tb testing.TB, s *inbound.Service, org, body string) *consign.Source {
	tb.Helper()
	var in inbound.SourceInput
	require.NoError(tb, decodeInto(body)(&in))
	src, err := s.CreateSource(tb.Context(), org, &in)
	require.NoError(tb, err)
	return src
}

func hmacHeader(secret string, b []byte) http.Header {
	return http.Header{"X-Signature": {"sha256=" + hex.EncodeToString(macOf(secret, b))}, "Content-Type": {"application/json"}}
}

func waitReceipt(tb testing.TB, st store.Store, org, src, id, status string) *consign.Receipt {
	tb.Helper()
	var last *consign.Receipt
	require.Eventually(tb, func() bool {
		r, err := st.ReceiptGet(context.Background(), org, src, id)
		last = r
		return err == nil && r.Status == status
	}, waitFor, tick, "receipt %s never became %s: %+v", id, status, last)
	return last
}

func TestSourceLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.service(h.pub)
	ctx := t.Context()

	src := create(t, s, h.org, `{"name": "Shopify orders", "topic": "order.created",
		"verify": {"type": "hmac-sha256", "header": "x-signature", "prefix": "sha256="},
		"dedupe": {"header": "X-Event-Id"}}`)
	require.Len(t, src.Verify.Secret, 64, "a generated secret is shown on creation")
	require.Equal(t, "X-Signature", src.Verify.Header, "header names are canonical")
	require.Equal(t, "hex", src.Verify.Encoding, "hex by default")
	require.NotEmpty(t, src.Token)
	secret := src.Verify.Secret

	row, err := h.st.SourceGet(ctx, h.org, src.ID)
	require.NoError(t, err)
	require.Empty(t, row.Verify.Secret)
	require.NotContains(t, string(row.Sealed), secret, "sealed at rest")
	require.NotContains(t, string(row.TokenSealed), src.Token)
	require.Equal(t, inbound.HashToken(src.Token), row.TokenHash)

	got, err := s.Source(ctx, h.org, src.ID)
	require.NoError(t, err)
	require.Empty(t, got.Verify.Secret, "never shown again")
	require.Equal(t, src.Token, got.Token, "the token is kept to show the ingest URL")

	// A rename keeps the secret; so does a verify object of the same type without one.
	_, err = s.UpdateSource(ctx, h.org, src.ID, decodeInto(`{"name": "Shopify"}`))
	require.NoError(t, err)
	up, err := s.UpdateSource(ctx, h.org, src.ID, decodeInto(`{"verify": {"type": "hmac-sha256", "header": "X-Shopify-Hmac-Sha256", "encoding": "base64"}}`))
	require.NoError(t, err)
	require.Empty(t, up.Verify.Secret)
	require.Equal(t, "Shopify", up.Name)
	full, err := h.st.SourceGet(ctx, h.org, src.ID)
	require.NoError(t, err)
	require.EqualValues(t, 3, full.Version)
	b := []byte(`{"id": 1}`)
	hdr := http.Header{"X-Shopify-Hmac-Sha256": {base64.StdEncoding.EncodeToString(macOf(secret, b))}}
	_, err = s.Receive(ctx, src.Token, hdr, b)
	require.NoError(t, err, "the kept secret verifies")

	// Another type without a secret gets a new one, shown in that reply.
	up, err = s.UpdateSource(ctx, h.org, src.ID, decodeInto(`{"verify": {"type": "header-token", "header": "X-Token"}}`))
	require.NoError(t, err)
	require.NotEmpty(t, up.Verify.Secret)
	require.NotEqual(t, secret, up.Verify.Secret)

	// Rotation: the old token stops working at once.
	old := src.Token
	rot, err := s.RotateToken(ctx, h.org, src.ID)
	require.NoError(t, err)
	require.NotEqual(t, old, rot.Token)
	_, err = s.Receive(ctx, old, http.Header{"X-Token": {up.Verify.Secret}}, b)
	require.Equal(t, consign.ENOTFOUND, consign.ErrorCode(err))
	_, err = s.Receive(ctx, rot.Token, http.Header{"X-Token": {up.Verify.Secret}}, []byte(`{"id": 2}`))
	require.NoError(t, err)

	require.NoError(t, s.DeleteSource(ctx, h.org, src.ID))
	_, err = s.Source(ctx, h.org, src.ID)
	require.Equal(t, consign.ENOTFOUND, consign.ErrorCode(err))
}

func TestSourceValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.service(h.pub)
	tests := []struct {
		name, body string
		fields     []string
	}{
		{"NameAndTopic", `{}`, []string{"name", "topic"}},
		{"UnknownTopic", `{"name": "x", "topic": "shipment.lost"}`, []string{"topic"}},
		{"OperationalTopic", `{"name": "x", "topic": "consign.test"}`, []string{"topic"}},
		{"UnknownScheme", `{"name": "x", "topic": "shipment.created", "verify": {"type": "md5"}}`, []string{"verify.type"}},
		{"HMACNeedsHeader", `{"name": "x", "topic": "shipment.created", "verify": {"type": "hmac-sha256", "encoding": "b32"}}`, []string{"verify.header", "verify.encoding"}},
		{"ShortSecret", `{"name": "x", "topic": "shipment.created", "verify": {"type": "header-token", "header": "X-T", "secret": "abc"}}`, []string{"verify.secret"}},
		{"NoneTakesNoSecret", `{"name": "x", "topic": "shipment.created", "verify": {"type": "none", "secret": "abcdefghijk"}}`, []string{"verify.secret"}},
		{"BadStandardWebhooksSecret", `{"name": "x", "topic": "shipment.created", "verify": {"type": "standard-webhooks", "secret": "whsec_short"}}`, []string{"verify.secret"}},
		{"BasicNeedsUser", `{"name": "x", "topic": "shipment.created", "verify": {"type": "basic"}}`, []string{"verify.username"}},
		{"DedupeBoth", `{"name": "x", "topic": "shipment.created", "dedupe": {"header": "X-Id", "json_pointer": "/id"}}`, []string{"dedupe"}},
		{"DedupeBadPointer", `{"name": "x", "topic": "shipment.created", "dedupe": {"json_pointer": "id"}}`, []string{"dedupe.json_pointer"}},
		{"PollNeedsSchedule", `{"name": "x", "topic": "shipment.created", "poll": {"url": "https://p.example.com/", "id_pointer": "/id"}}`, []string{"poll"}},
		{"PollBoth", `{"name": "x", "topic": "shipment.created", "poll": {"url": "https://p.example.com/", "id_pointer": "/id", "interval": "1h", "cron": "0 0 * * *"}}`, []string{"poll"}},
		{"PollIntervalTooShort", `{"name": "x", "topic": "shipment.created", "poll": {"url": "https://p.example.com/", "id_pointer": "/id", "interval": "500ms"}}`, []string{"poll.interval"}},
		{"PollBadCron", `{"name": "x", "topic": "shipment.created", "poll": {"url": "https://p.example.com/", "id_pointer": "/id", "cron": "every day"}}`, []string{"poll.cron"}},
		{"PollBadZone", `{"name": "x", "topic": "shipment.created", "poll": {"url": "https://p.example.com/", "id_pointer": "/id", "cron": "0 0 * * *", "timezone": "Nowhere"}}`, []string{"poll.cron"}},
		{"PollBadURL", `{"name": "x", "topic": "shipment.created", "poll": {"url": "ftp://p.example.com/", "id_pointer": "/id", "interval": "1h"}}`, []string{"poll.url"}},
		{"PollNeedsID", `{"name": "x", "topic": "shipment.created", "poll": {"url": "https://p.example.com/", "interval": "1h"}}`, []string{"poll.id_pointer"}},
		{"PollReservedHeader", `{"name": "x", "topic": "shipment.created", "poll": {"url": "https://p.example.com/", "id_pointer": "/id", "interval": "1h", "headers": {"Host": "x"}}}`, []string{"poll.headers"}},
		{"PollControlCharacter", `{"name": "x", "topic": "shipment.created", "poll": {"url": "https://p.example.com/", "id_pointer": "/id", "interval": "1h", "headers": {"X-Poll-Key": "k\u0008"}}}`, []string{"poll.headers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var in inbound.SourceInput
			require.NoError(t, decodeInto(tt.body)(&in))
			_, err := s.CreateSource(t.Context(), h.org, &in)
			var e *consign.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, consign.EINVALID, e.Code, "%v", err)
			var fields []string
			for _, f := range e.Fields {
				fields = append(fields, f.Field)
			}
			require.ElementsMatch(t, tt.fields, fields, "%v", err)
		})
	}
	var in inbound.SourceInput
	require.Error(t, decodeInto(`{"name": "x", "verify": {"type": "none", "colour": 1}}`)(&in), "unknown fields inside objects are refused")
}

func TestPollHeadersRedacted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.service(h.pub)
	ctx := t.Context()
	src := create(t, s, h.org, `{"name": "Deposco", "topic": "shipment.created",
		"poll": {"url": "https://api.deposco.example/shipments", "id_pointer": "/id", "cron": "0 0 * * *", "timezone": "America/New_York",
			"headers": {"authorization": "Bearer provider-key", "X-Tenant": "acme"}}}`)
	require.Equal(t, map[string]string{"Authorization": "••••-key", "X-Tenant": "••••"}, src.Poll.Headers, "masked from creation on")
	require.NotNil(t, src.PollStatus.NextRunAt)

	got, err := s.Source(ctx, h.org, src.ID)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"Authorization": "••••-key", "X-Tenant": "••••"}, got.Poll.Headers, "every value masked, whatever the header is called")

	// Sending back what GET showed keeps the credential; the schedule stays.
	patch, _ := json.Marshal(map[string]any{"poll": got.Poll})
	up, err := s.UpdateSource(ctx, h.org, src.ID, decodeInto(string(patch)))
	require.NoError(t, err)
	require.True(t, src.PollStatus.NextRunAt.Equal(*up.PollStatus.NextRunAt), "an unchanged poll keeps its schedule")
	row, err := h.st.SourceGet(ctx, h.org, src.ID)
	require.NoError(t, err)
	require.NotContains(t, string(row.Sealed), "provider-key")
	full, err := s.RotateToken(ctx, h.org, src.ID) // opens the credentials
	require.NoError(t, err)
	require.Equal(t, "••••-key", full.Poll.Headers["Authorization"])

	// null removes the poll.
	up, err = s.UpdateSource(ctx, h.org, src.ID, decodeInto(`{"poll": null}`))
	require.NoError(t, err)
	require.Nil(t, up.Poll)
	row, err = h.st.SourceGet(ctx, h.org, src.ID)
	require.NoError(t, err)
	require.True(t, row.NextPollAt.IsZero())
}

func TestReceive(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	clk := &clock{t: time.Now().UTC()}
	s := h.service(h.pub, func(c *inbound.Config) { c.Now = clk.Now; c.MaxPayload = 1 << 10 })
	run(t, s)
	ctx := t.Context()
	src := create(t, s, h.org, `{"name": "WooCommerce", "topic": "order.created",
		"verify": {"type": "hmac-sha256", "header": "X-Signature", "prefix": "sha256=", "secret": "woo-secret-123"},
		"dedupe": {"header": "X-Event-Id"}}`)

	hdr := hmacHeader("woo-secret-123", body)
	hdr.Set("X-Event-Id", "evt-1")
	hdr.Set("Authorization", "Bearer do-not-store")
	r, err := s.Receive(ctx, src.Token, hdr, body)
	require.NoError(t, err)
	require.Equal(t, consign.ReceiptPending, r.Status)
	require.Equal(t, "evt-1", r.DedupeKey)
	done := waitReceipt(t, h.st, h.org, src.ID, r.ID, consign.ReceiptProcessed)
	require.NotEmpty(t, done.EventID)
	require.True(t, done.Verified)
	require.Equal(t, consign.Redacted, done.Headers["Authorization"])
	require.Equal(t, string(body), done.Body)
	h.pub.mu.Lock()
	call := h.pub.calls[0]
	h.pub.mu.Unlock()
	require.Equal(t, inbound.IdempotencyKey(r.ID), call.IdempotencyKey)
	require.Equal(t, "order.created", call.Type)
	require.JSONEq(t, string(body), string(call.Payload))

	// A duplicate is stored, answered, and goes no further.
	dup, err := s.Receive(ctx, src.Token, hdr, body)
	require.NoError(t, err)
	require.True(t, dup.Duplicate)
	require.Equal(t, consign.ReceiptDuplicate, dup.Status)

	// Without the dedupe header it is accepted, with a note.
	hdr.Del("X-Event-Id")
	noKey, err := s.Receive(ctx, src.Token, hdr, body)
	require.NoError(t, err)
	require.Contains(t, noKey.Reason, "X-Event-Id header is missing")
	waitReceipt(t, h.st, h.org, src.ID, noKey.ID, consign.ReceiptProcessed)

	// Refusals, each stored with its reason.
	tests := []struct {
		name     string
		hdr      http.Header
		body     []byte
		code     string
		verified bool
		reason   string
	}{
		{"BadSignature", hmacHeader("wrong", body), body, consign.EUNAUTHORIZED, false, "verification failed: X-Signature does not match"},
		{"NoSignature", http.Header{}, body, consign.EUNAUTHORIZED, false, "verification failed: missing X-Signature header"},
		{"NotJSON", hmacHeader("woo-secret-123", []byte("a=1&b=2")), []byte("a=1&b=2"), consign.EINVALID, true, "the body is not JSON"},
		{"Empty", hmacHeader("woo-secret-123", nil), nil, consign.EINVALID, true, "the body is empty"},
		{"Null", hmacHeader("woo-secret-123", []byte("null")), []byte("null"), consign.EINVALID, true, "JSON null"},
		{"OverPayloadLimit", hmacHeader("woo-secret-123", bigJSON(2000)), bigJSON(2000), consign.ETOOLARGE, true, "an event's payload may be at most 1024"},
	}
	for _, tt := range tests {
		r, err := s.Receive(ctx, src.Token, tt.hdr, tt.body)
		require.Equal(t, tt.code, consign.ErrorCode(err), "%s: %v", tt.name, err)
		require.Contains(t, err.Error(), r.ID, "%s: the reply names the receipt", tt.name)
		got, err := h.st.ReceiptGet(ctx, h.org, src.ID, r.ID)
		require.NoError(t, err, tt.name)
		require.Equal(t, consign.ReceiptRejected, got.Status, tt.name)
		require.Equal(t, tt.verified, got.Verified, tt.name)
		require.Contains(t, got.Reason, tt.reason, tt.name)
		require.Empty(t, got.EventID)
	}

	// Headers over the limits are refused before anything is stored.
	many := hmacHeader("woo-secret-123", body)
	for i := range 120 {
		many.Set(fmt.Sprintf("X-H-%d", i), "v")
	}
	_, err = s.Receive(ctx, src.Token, many, body)
	require.Equal(t, consign.ETOOLARGE, consign.ErrorCode(err))
	_, err = s.Receive(ctx, "no-such-token", hdr, body)
	require.Equal(t, consign.ENOTFOUND, consign.ErrorCode(err))
	_, err = s.Receive(ctx, strings.Repeat("x", 1000), hdr, body)
	require.Equal(t, consign.ENOTFOUND, consign.ErrorCode(err))

	require.Equal(t, 2, h.pub.events(), "one event per accepted receipt, none for the rest")

	// Two verification failures within the minute: one announcement. A minute later the
	// next one counts those in between.
	require.Eventually(t, func() bool { return len(h.pub.emits()) == 1 }, waitFor, tick)
	first := h.pub.emits()[0]
	require.Equal(t, consign.TypeSourceVerificationFailed, first["_type"])
	require.Equal(t, h.org, first["_org"])
	require.Equal(t, src.ID, first["source_id"])
	require.Contains(t, first["reason"], "does not match")
	require.Equal(t, 0, first["unannounced_failures"])
	for range 5 {
		_, err = s.Receive(ctx, src.Token, http.Header{}, body)
		require.Error(t, err)
	}
	clk.Add(time.Minute)
	_, err = s.Receive(ctx, src.Token, http.Header{}, body)
	require.Error(t, err)
	require.Eventually(t, func() bool { return len(h.pub.emits()) == 2 }, waitFor, tick)
	require.Equal(t, 6, h.pub.emits()[1]["unannounced_failures"], "the second failure of the table and five more")
}

func bigJSON(n int) []byte {
	return []byte(`{"pad":"` + strings.Repeat("x", n) + `"}`)
}

// TestPendingReceiptsAfterRestart: receipts accepted but not yet events when the process
// stops become events when it starts again, exactly once, even when the first process
// had published the event and died before recording it.
func TestPendingReceiptsAfterRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	down := newFakePub()
	unavailable := consign.Errorf(consign.EUNAVAILABLE, "shutting down")
	var n atomic.Int32
	down.fail = func(ingest.EventInput) (error, bool) {
		// The first receipt's event is written, but the reply is lost; the second fails
		// before anything is written.
		return unavailable, n.Add(1) == 1
	}
	first := h.service(down)
	stop := run(t, first)
	src := create(t, first, h.org, `{"name": "Deposco", "topic": "shipment.created"}`)
	a, err := first.Receive(ctx, src.Token, http.Header{}, []byte(`{"id": "a"}`))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return down.callCount() >= 1 }, waitFor, tick)
	b, err := first.Receive(ctx, src.Token, http.Header{}, []byte(`{"id": "b"}`))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return down.callCount() >= 2 }, waitFor, tick)
	stop()
	for _, id := range []string{a.ID, b.ID} {
		r, err := h.st.ReceiptGet(ctx, h.org, src.ID, id)
		require.NoError(t, err)
		require.Equal(t, consign.ReceiptPending, r.Status, "not settled by the first process")
	}

	// The second process shares the first one's events, as ingest's store would.
	down.mu.Lock()
	down.fail = nil
	madeFirst := down.byKey[inbound.IdempotencyKey(a.ID)]
	down.mu.Unlock()
	require.NotNil(t, madeFirst)
	second := h.service(down)
	run(t, second)
	ra := waitReceipt(t, h.st, h.org, src.ID, a.ID, consign.ReceiptProcessed)
	rb := waitReceipt(t, h.st, h.org, src.ID, b.ID, consign.ReceiptProcessed)
	require.Equal(t, madeFirst.ID, ra.EventID, "the event made before the crash, not a second one")
	require.NotEqual(t, ra.EventID, rb.EventID)
	require.Equal(t, 2, down.events())
}

func TestPublishRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pub := newFakePub()
	pub.fail = func(in ingest.EventInput) (error, bool) {
		if bytes.Contains(in.Payload, []byte("bad")) {
			return consign.Invalid("payload", "does not match the schema of shipment.created: missing tracking"), false
		}
		return nil, false
	}
	s := h.service(pub)
	run(t, s)
	src := create(t, s, h.org, `{"name": "Deposco", "topic": "shipment.created", "dedupe": {"json_pointer": "/id"}}`)
	r, err := s.Receive(t.Context(), src.Token, http.Header{}, []byte(`{"id": 7, "bad": true}`))
	require.NoError(t, err)
	got := waitReceipt(t, h.st, h.org, src.ID, r.ID, consign.ReceiptRejected)
	require.Contains(t, got.Reason, "not turned into an event: payload: does not match the schema")

	// The provider's corrected resend is not a duplicate of the refused one.
	again, err := s.Receive(t.Context(), src.Token, http.Header{}, []byte(`{"id": 7, "tracking": "1Z"}`))
	require.NoError(t, err)
	require.False(t, again.Duplicate)
	waitReceipt(t, h.st, h.org, src.ID, again.ID, consign.ReceiptProcessed)
}

// provider is a list API: it serves the items it holds and counts its requests.
type provider struct {
	*httptest.Server
	mu       sync.Mutex
	items    []map[string]any
	status   int
	delay    time.Duration
	hits     atomic.Int32
	inflight atomic.Int32
	maxIn    atomic.Int32
	headers  chan http.Header
}

func newProvider(tb testing.TB, ids ...any) *provider {
	p := &provider{status: http.StatusOK, headers: make(chan http.Header, 100)}
	for _, id := range ids {
		p.items = append(p.items, map[string]any{"id": id, "carrier": "UPS"})
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits.Add(1)
		n := p.inflight.Add(1)
		defer p.inflight.Add(-1)
		for m := p.maxIn.Load(); n > m && !p.maxIn.CompareAndSwap(m, n); m = p.maxIn.Load() {
		}
		select {
		case p.headers <- r.Header.Clone():
		default:
		}
		p.mu.Lock()
		status, delay, items := p.status, p.delay, p.items
		p.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"data": items, "next": nil})
	}))
	tb.Cleanup(p.Close)
	return p
}

func (p *provider) set(f func(p *provider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func pollReceipts(tb testing.TB, st store.Store, org, src string) []*consign.Receipt {
	tb.Helper()
	rs, err := st.ReceiptList(context.Background(), org, src, store.ReceiptFilter{Via: consign.ViaPoll, Page: store.Page{Limit: 500}})
	require.NoError(tb, err)
	return rs
}

func TestPollFillsGaps(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.service(h.pub)
	run(t, s)
	ctx := t.Context()
	prov := newProvider(t, 1, 2, "3", 4, 5, nil)
	src := create(t, s, h.org, `{"name": "Deposco", "topic": "shipment.created", "dedupe": {"json_pointer": "/id"}}`)
	for _, id := range []string{"1", "2", `"4"`} {
		_, err := s.Receive(ctx, src.Token, http.Header{}, []byte(`{"id": `+id+`}`))
		require.NoError(t, err)
	}
	_, err := s.UpdateSource(ctx, h.org, src.ID, decodeInto(`{"poll": {"url": "`+prov.URL+`/shipments", "items_pointer": "/data",
		"id_pointer": "/id", "interval": "1s", "headers": {"X-Api-Key": "k-123"}}}`))
	require.NoError(t, err)

	require.Eventually(t, func() bool { return len(pollReceipts(t, h.st, h.org, src.ID)) == 2 }, waitFor, tick)
	hdr := <-prov.headers
	require.Equal(t, "k-123", hdr.Get("X-Api-Key"))
	require.Equal(t, "application/json", hdr.Get("Accept"))
	require.Equal(t, consign.UserAgent, hdr.Get("User-Agent"))
	var keys []string
	for _, r := range pollReceipts(t, h.st, h.org, src.ID) {
		keys = append(keys, r.DedupeKey)
		require.True(t, r.Verified)
		done := waitReceipt(t, h.st, h.org, src.ID, r.ID, consign.ReceiptProcessed)
		require.JSONEq(t, `{"id": `+map[string]string{"3": `"3"`, "5": "5"}[r.DedupeKey]+`, "carrier": "UPS"}`, done.Body)
	}
	require.ElementsMatch(t, []string{"3", "5"}, keys, "only the items never received")

	// The run records its status after the receipts it wrote.
	var lastError string
	require.Eventually(t, func() bool {
		row, err := h.st.SourceGet(ctx, h.org, src.ID)
		require.NoError(t, err)
		lastError = row.PollStatus.LastError
		return lastError != ""
	}, waitFor, tick)
	require.Contains(t, lastError, "1 of 6 items have no id at /id")

	// Later runs find nothing new.
	seen := prov.hits.Load()
	require.Eventually(t, func() bool { return prov.hits.Load() >= seen+2 }, waitFor, tick)
	require.Len(t, pollReceipts(t, h.st, h.org, src.ID), 2)
	require.Eventually(t, func() bool { return h.pub.events() == 5 }, waitFor, tick)
	require.Equal(t, int32(1), prov.maxIn.Load(), "one poll of a source at a time")
}

func TestPollErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(p *provider)
		poll  string
		err   string
	}{
		{"Status", func(p *provider) { p.status = http.StatusServiceUnavailable }, `"items_pointer": "/data"`, "HTTP 503"},
		{"Timeout", func(p *provider) { p.delay = 5 * time.Second }, `"items_pointer": "/data", "timeout": "1s"`, "timeout after 1s"},
		{"NotAnArray", nil, `"items_pointer": "/next"`, `items_pointer "/next" is not an array`},
		{"NothingThere", nil, `"items_pointer": "/items"`, `nothing at items_pointer "/items"`},
		{"WholeDocumentIsAnObject", nil, `"items_pointer": ""`, `is not an array`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			s := h.service(h.pub)
			run(t, s)
			prov := newProvider(t, 1)
			if tt.setup != nil {
				prov.set(tt.setup)
			}
			src := create(t, s, h.org, `{"name": "p", "topic": "shipment.created", "poll": {"url": "`+prov.URL+`", "id_pointer": "/id", "interval": "1s", `+tt.poll+`}}`)
			var last *store.SourceRow
			require.Eventually(t, func() bool {
				last, _ = h.st.SourceGet(context.Background(), h.org, src.ID)
				return last != nil && last.PollStatus.LastRunAt != nil
			}, waitFor, tick)
			require.Contains(t, last.PollStatus.LastError, tt.err)
			require.Empty(t, pollReceipts(t, h.st, h.org, src.ID))
		})
	}
}

// TestPollOncePerSourceAcrossProcesses runs two services on one store, as two nodes
// would: each poll of the source still runs once at a time, and no item becomes two
// events.
func TestPollOncePerSourceAcrossProcesses(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b := h.service(h.pub), h.service(h.pub)
	prov := newProvider(t, 1, 2, 3)
	prov.set(func(p *provider) { p.delay = 300 * time.Millisecond })
	src := create(t, a, h.org, `{"name": "p", "topic": "shipment.created", "poll": {"url": "`+prov.URL+`", "items_pointer": "/data", "id_pointer": "/id", "interval": "1s"}}`)
	run(t, a)
	run(t, b)
	require.Eventually(t, func() bool { return prov.hits.Load() >= 4 }, waitFor, tick)
	require.Equal(t, int32(1), prov.maxIn.Load(), "never two polls of a source at once")
	require.Len(t, pollReceipts(t, h.st, h.org, src.ID), 3)
	require.Eventually(t, func() bool { return h.pub.events() == 3 }, waitFor, tick)
}

// TestPollScheduleSurvivesRestart: the next run is in the store, so a new process runs
// the poll when it is due, not at once, and finds nothing new.
func TestPollScheduleSurvivesRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	prov := newProvider(t, 1, 2)
	first := h.service(h.pub)
	stop := run(t, first)
	src := create(t, first, h.org, `{"name": "p", "topic": "shipment.created", "poll": {"url": "`+prov.URL+`", "items_pointer": "/data", "id_pointer": "/id", "interval": "2s"}}`)
	require.Eventually(t, func() bool { return len(pollReceipts(t, h.st, h.org, src.ID)) == 2 }, waitFor, tick)
	stop()
	row, err := h.st.SourceGet(ctx, h.org, src.ID)
	require.NoError(t, err)
	require.NotNil(t, row.PollStatus.LastRunAt)
	require.True(t, row.NextPollAt.After(*row.PollStatus.LastRunAt))

	second := h.service(h.pub)
	run(t, second)
	var after *store.SourceRow
	require.Eventually(t, func() bool {
		after, _ = h.st.SourceGet(context.Background(), h.org, src.ID)
		return after != nil && after.PollStatus.LastRunAt.After(*row.PollStatus.LastRunAt)
	}, waitFor, tick)
	require.False(t, after.PollStatus.LastRunAt.Before(row.NextPollAt), "the next run came when it was due, not at the start")
	require.Len(t, pollReceipts(t, h.st, h.org, src.ID), 2, "nothing polled twice")
	require.Eventually(t, func() bool { return h.pub.events() == 2 }, waitFor, tick)
}

// TestReceiptsPublishedInBatches: receipts queued together become events in batches, and
// one that ingest refuses is rejected alone while the others of its batch become events;
// each receipt's event type comes from its type_header, else the topic.
func TestReceiptsPublishedInBatches(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pub := newFakePub()
	pub.fail = func(in ingest.EventInput) (error, bool) {
		if in.Type == "order.teleported" {
			return consign.Invalid("type", "order.teleported is not in the catalog"), false
		}
		return nil, false
	}
	s := h.service(pub)
	src := create(t, s, h.org, `{"name": "warehouse", "topic": "order.created", "type_header": "X-Event-Type"}`)
	// Received before Run: all wait in the queue and go together.
	var ids []string
	for i := range 50 {
		hdr := http.Header{}
		switch i {
		case 7:
			hdr.Set("X-Event-Type", "order.teleported")
		case 8:
			hdr.Set("X-Event-Type", "order.updated")
		}
		r, err := s.Receive(t.Context(), src.Token, hdr, fmt.Appendf(nil, `{"n": %d}`, i))
		require.NoError(t, err)
		ids = append(ids, r.ID)
	}
	run(t, s)
	for i, id := range ids {
		switch r := waitReceipt(t, h.st, h.org, src.ID, id, map[bool]string{true: consign.ReceiptRejected, false: consign.ReceiptProcessed}[i == 7]); i {
		case 7:
			require.Contains(t, r.Reason, "not in the catalog")
		case 8:
			require.Equal(t, "order.updated", r.Topic)
		default:
			require.Equal(t, "order.created", r.Topic)
		}
	}
	require.Equal(t, 49, pub.events())
	pub.mu.Lock()
	defer pub.mu.Unlock()
	require.Greater(t, pub.largest, 1, "published in batches, not one call per receipt")
}

// TestFromTLS: a broker source's own TLS settings are checked as an endpoint's are (field
// errors under from.tls), shown as the certificates' subjects and never as PEM, the
// client key sealed; sent back as shown they are kept, and a from without tls drops them.
func TestFromTLS(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.service(h.pub)
	ctx := t.Context()
	ca := brokertest.NewCA(t)
	from := func(tls map[string]any) string {
		f := map[string]any{"type": "nats", "url": "tls://nats.example.com:4222", "subject": "orders.>"}
		if tls != nil {
			f["tls"] = tls
		}
		b, _ := json.Marshal(map[string]any{"name": "warehouse", "topic": "shipment.created", "from": f})
		return string(b)
	}
	for _, tt := range []struct {
		name   string
		tls    map[string]any
		fields []string
	}{
		{"Empty", map[string]any{}, []string{"from.tls"}},
		{"NotPEM", map[string]any{"ca_certificates": "not a certificate"}, []string{"from.tls.ca_certificates"}},
		{"KeyWithoutCertificate", map[string]any{"client_key": ca.KeyPEM}, []string{"from.tls.client_certificate"}},
		{"CertificateWithoutKey", map[string]any{"client_certificate": ca.CertPEM}, []string{"from.tls.client_key"}},
		{"OtherKey", map[string]any{"client_certificate": ca.CertPEM, "client_key": brokertest.NewCA(t).KeyPEM}, []string{"from.tls.client_key"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var in inbound.SourceInput
			require.NoError(t, decodeInto(from(tt.tls))(&in))
			_, err := s.CreateSource(ctx, h.org, &in)
			var e *consign.Error
			require.ErrorAs(t, err, &e)
			var fields []string
			for _, f := range e.Fields {
				fields = append(fields, f.Field)
			}
			require.Equal(t, tt.fields, fields, "%v", err)
		})
	}

	src := create(t, s, h.org, from(map[string]any{"ca_certificates": ca.PEM, "client_certificate": ca.CertPEM, "client_key": ca.KeyPEM}))
	shown := src.From.TLS
	require.Equal(t, "CN=127.0.0.1", shown.Subject)
	require.Equal(t, "CN=consign test CA", shown.Issuer)
	require.Equal(t, []string{"CN=consign test CA"}, shown.CASubjects)
	require.Equal(t, consign.TLSInput{}, shown.TLSInput, "no PEM document in a reply")
	stored := func() *store.SourceRow {
		row, err := h.st.SourceGet(ctx, h.org, src.ID)
		require.NoError(t, err)
		require.NotContains(t, string(row.Sealed), "PRIVATE KEY", "the key is sealed")
		return row
	}
	row := stored()
	require.Equal(t, &consign.FromTLS{TLSInput: consign.TLSInput{ClientCertificate: ca.CertPEM, CACertificates: ca.PEM}}, row.From.TLS,
		"the certificates in clear, the key apart")
	sealed := len(row.Sealed)

	// The from object sent back as shown keeps the settings, the key included.
	got, err := s.Source(ctx, h.org, src.ID)
	require.NoError(t, err)
	got.From.Durable = "other"
	patch, _ := json.Marshal(map[string]any{"from": got.From})
	up, err := s.UpdateSource(ctx, h.org, src.ID, decodeInto(string(patch)))
	require.NoError(t, err)
	require.Equal(t, shown, up.From.TLS)
	row = stored()
	require.Equal(t, ca.PEM, row.From.TLS.CACertificates)
	require.Len(t, row.Sealed, sealed, "the sealed key kept")

	// A from without tls drops the settings.
	got.From.TLS = nil
	patch, _ = json.Marshal(map[string]any{"from": got.From})
	up, err = s.UpdateSource(ctx, h.org, src.ID, decodeInto(string(patch)))
	require.NoError(t, err)
	require.Nil(t, up.From.TLS)
	require.Nil(t, stored().From.TLS)
}
