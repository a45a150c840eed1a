package app_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/consign-dev/consign/internal/app"
)

func TestTraceFromPublishToAttempt(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	e := start(t, func(c *app.Config) { c.TracerProvider = tp })
	o := e.newOrg("acme")
	rc := newReceiver(t, status(http.StatusOK))
	e.createEndpoint(o, map[string]any{"url": rc.URL + "/hooks", "topics": []string{"*"}})
	evID := e.publish(o, "order.fulfilled", map[string]any{"id": "ord_1"})
	got := rc.next(t)
	d := e.waitStatus(o, e.onlyDelivery(o, evID).ID, "succeeded")

	byName := map[string]tracetest.SpanStub{}
	require.Eventually(t, func() bool {
		for _, s := range spans.GetSpans() {
			byName[s.Name] = s
		}
		_, ok := byName["consign.dispatch.attempt"]
		return ok
	}, waitFor, tick)
	req, publish, fanOut, attempt := byName["POST /v1/orgs/{org}/events"], byName["consign.ingest.publish"],
		byName["consign.ingest.fan_out"], byName["consign.dispatch.attempt"]
	traceID := req.SpanContext.TraceID()
	require.True(t, traceID.IsValid(), "the API request has a span")
	for _, s := range []tracetest.SpanStub{publish, fanOut, attempt} {
		require.Equal(t, traceID, s.SpanContext.TraceID(), "%s is in the request's trace", s.Name)
	}
	require.Equal(t, req.SpanContext.SpanID(), publish.Parent.SpanID())
	require.Equal(t, publish.SpanContext.SpanID(), fanOut.Parent.SpanID())
	require.Equal(t, fanOut.SpanContext.SpanID(), attempt.Parent.SpanID())

	// The endpoint can continue the trace; the attempt record shows the header.
	want := "00-" + traceID.String() + "-" + attempt.SpanContext.SpanID().String() + "-01"
	require.Equal(t, want, got.Header.Get("Traceparent"))
	require.Equal(t, want, d.Attempts[0].Request.Headers["Traceparent"], "attempt headers: %v", d.Attempts[0].Request.Headers)
}
