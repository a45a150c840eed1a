package web

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
)

// wellFormed fails unless s parses as XML (the SVG of a chart must).
func wellFormed(tb testing.TB, s string) {
	tb.Helper()
	d := xml.NewDecoder(strings.NewReader("<root>" + s + "</root>"))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(tb, err, "not well-formed:\n%s", s)
	}
}

func TestChartSVG(t *testing.T) {
	t.Parallel()
	w := newWindow(time.Date(2026, 11, 23, 12, 34, 56, 0, time.UTC), time.Hour, time.Minute)
	labels := w.labels("15:04")
	ok, fail := make([]float64, w.n), make([]float64, w.n)
	ok[10], ok[59], fail[59] = 3, 7, 2
	nan := make([]float64, w.n)
	for i := range nan {
		nan[i] = math.NaN()
	}
	nan[3], nan[4], nan[20] = 12, 30, 5

	for name, c := range map[string]chart{
		"bars": {Title: `Deliveries <per> "minute"`, Kind: chartBars, Unit: "deliveries", Labels: labels, Ticks: w.ticks(8), Integer: true,
			Series: []series{{Name: "ok & fine", Class: "s-ok", Values: ok}, {Name: "failed", Class: "s-fail", Values: fail}}, Width: 600, Height: 150},
		"lines": {Title: "Latency", Kind: chartLines, Unit: "ms", Labels: labels,
			Series: []series{{Name: "p50", Class: "s-p50", Values: nan}}, Width: 600, Height: 150, Truncated: true},
		"spark": {Title: "Volume", Kind: chartBars, Labels: labels, Series: []series{{Name: "n", Class: "s-ok", Values: ok}}, Width: 120, Height: 28, Spark: true},
		"empty": {Title: "Nothing", Kind: chartLines, Unit: "%", Max: 100, Labels: labels, Series: []series{{Name: "rate", Class: "s-fail", Values: make([]float64, w.n)}}, Width: 300, Height: 100},
	} {
		svg := string(c.SVG())
		wellFormed(t, svg)
		require.Contains(t, svg, `role="img"`, name)
		require.NotContains(t, svg, "NaN", name)
		require.NotContains(t, svg, "<per>", name, "a title was not escaped")
		switch name {
		case "bars":
			require.Contains(t, svg, "ok &amp; fine: 10 in total, at most 7 (at 12:34)")
			require.Contains(t, svg, ">11:40</text>", "ticks fall on round times")
			require.NotContains(t, svg, ">11:35</text>", "ticks fall on round times")
			require.NotContains(t, svg, ">3.5<", "a count axis shows whole numbers only")
		case "lines":
			require.Contains(t, svg, "latest 5 ms, highest 30 ms (at 11:39)")
			require.Equal(t, 1, strings.Count(svg, "<polyline"), "NaN breaks the line; a lone point is a dot")
			require.Contains(t, svg, "newest deliveries only")
		case "spark":
			require.NotContains(t, svg, "<figure")
		}
	}
}

func TestWindow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 34, 56, 0, time.UTC)
	w := newWindow(now, 24*time.Hour, time.Hour)
	require.Equal(t, 24, w.n)
	require.Equal(t, time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC), w.start)
	require.Equal(t, 23, w.index(now))
	require.Equal(t, -1, w.index(w.start.Add(-time.Nanosecond)))
	require.Equal(t, -1, w.index(now.Add(time.Hour)))
	ticks := w.ticks(8)
	require.LessOrEqual(t, len(ticks), 8)
	for _, i := range ticks {
		require.Zero(t, w.start.Add(time.Duration(i)*w.step).Hour()%3, "tick %d is not on a round hour", i)
	}
}

func TestIDAt(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cut := idAt(consign.PrefixDelivery, at)
	require.True(t, consign.HasPrefix(cut, consign.PrefixDelivery), cut)
	for range 100 {
		require.Less(t, consign.NewID(consign.PrefixDelivery, at.Add(-time.Millisecond)), cut)
		require.GreaterOrEqual(t, consign.NewID(consign.PrefixDelivery, at), cut)
	}
}

func TestSessions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ss := newSessions(time.Hour, 3, func() time.Time { return now })
	c1, s1 := ss.create([]byte("h1"), "key_1")
	require.Same(t, s1, ss.get(c1))
	require.Nil(t, ss.get(c1+"x"))
	require.Nil(t, ss.get(""))
	require.NotEqual(t, s1.csrf, "")
	require.True(t, s1.checkCSRF(s1.csrf))
	require.False(t, s1.checkCSRF(""))
	require.False(t, s1.checkCSRF(s1.csrf[:len(s1.csrf)-1]))

	s1.addFlash("ok", "saved")
	require.Equal(t, []flash{{"ok", "saved"}}, s1.takeFlash())
	require.Empty(t, s1.takeFlash())

	now = now.Add(time.Minute)
	c2, _ := ss.create([]byte("h2"), "key_2")
	c3, _ := ss.create([]byte("h3"), "key_3")
	c4, _ := ss.create([]byte("h4"), "key_4") // full: the oldest goes
	require.Nil(t, ss.get(c1))
	for _, c := range []string{c2, c3, c4} {
		require.NotNil(t, ss.get(c))
	}
	ss.delete(c2)
	require.Nil(t, ss.get(c2))

	now = now.Add(time.Hour)
	require.Nil(t, ss.get(c3), "an expired session still works")
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/ui/orgs/org_1/":          "/ui/orgs/org_1/",
		"/ui/deliveries?status=x":  "/ui/deliveries?status=x",
		"":                         "",
		"/v1/orgs":                 "",
		"https://evil.example/ui/": "",
		"//evil.example/ui/":       "",
		"/ui/\\evil":               "",
		"/ui/\r\nSet-Cookie: x":    "",
	} {
		require.Equal(t, want, safeNext(in), in)
	}
}

func TestMatchTopic(t *testing.T) {
	t.Parallel()
	require.True(t, matchTopic("", "order.created"))
	require.True(t, matchTopic("order.created", "order.created"))
	require.True(t, matchTopic("order.*", "order.created"))
	require.False(t, matchTopic("order.*", "product.selected"))
	require.True(t, matchTopic("*", "order.created"))
	require.False(t, matchTopic("*", consign.TypeTest))
	require.False(t, matchTopic("order", "order.created"))
}

func TestFormParser(t *testing.T) {
	t.Parallel()
	var p formParser
	require.Equal(t, 2.5, p.float("rate_limit", " 2.5 "))
	require.Equal(t, 0, p.int("burst_limit", ""))
	require.Equal(t, []consign.Duration{consign.Duration(5 * time.Second), consign.Duration(time.Minute), consign.Duration(72 * time.Hour)},
		p.durations("retry.schedule", "5s, 1m\n3d"))
	require.Equal(t, map[string]string{"X-A": "1", "X-B": "two: parts"}, p.headers("headers", "X-A: 1\n\n  X-B: two: parts  \n"))
	at := p.time("since", "2026-11-23T12:30")
	require.Equal(t, time.Date(2026, 11, 23, 12, 30, 0, 0, time.UTC), *at)
	require.Nil(t, p.time("until", ""))
	require.NoError(t, p.err())

	p.int("burst_limit", "many")
	p.headers("headers", "no colon")
	p.durations("retry.schedule", "5s, soon")
	p.time("since", "yesterday")
	err := p.err()
	errs, ok := formErrors(err)
	require.True(t, ok)
	for _, f := range []string{"burst_limit", "headers", "retry.schedule", "since"} {
		require.NotEmpty(t, errs.Get(f), f)
	}
	require.NotEmpty(t, errs.Get("retry"), "a prefix finds nested fields")
}

func TestEnvelopeIsTheDispatchersBody(t *testing.T) {
	t.Parallel()
	e := &consign.Event{ID: "evt_1", Type: "order.fulfilled", Payload: json.RawMessage(`{"b":1,  "a":[2]}`),
		CreatedAt: time.Date(2026, 11, 23, 12, 0, 0, 123e6, time.UTC)}
	b := envelope(e)
	require.True(t, json.Valid(b))
	require.True(t, bytes.HasSuffix(b, []byte(`"data":{"b":1,  "a":[2]}}`)), "the payload must be kept byte for byte: %s", b)
	require.Equal(t, string(e.Payload), requestBody(e, &consign.Endpoint{PayloadFormat: consign.FormatRaw}))
	require.Equal(t, string(b), requestBody(e, nil))
	require.Empty(t, requestBody(nil, nil))
}

func TestTemplatesParse(t *testing.T) {
	t.Parallel()
	p := mustParsePages()
	for _, name := range []string{"signin", "error", "orgs", "keys", "overview", "endpoints", "endpoint", "endpoint_form",
		"deliveries", "delivery", "events", "event", "sources", "source", "source_form", "job", "catalog", "catalog_type"} {
		require.NotNil(t, p.sets[name], name)
	}
}
