package web

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// Bounds on what the charts read. The store has no time-series query, so charts are
// drawn from the newest deliveries (and, for latency and failures, the attempts of a
// sample of them); a chart says when it shows less than the whole window.
const (
	overviewScan = 10000 // deliveries read for the overview's volume chart
	attemptScan  = 300   // deliveries whose attempts are read for failure rate and latency
	sparkScan    = 2000  // deliveries read for an endpoint's 24-hour volume
)

// window is a time range cut into n equal buckets, ending at the current bucket's end.
type window struct {
	start time.Time
	step  time.Duration
	n     int
}

func newWindow(now time.Time, length, step time.Duration) window {
	n := int(length / step)
	end := now.Truncate(step).Add(step)
	return window{start: end.Add(-time.Duration(n) * step), step: step, n: n}
}

// index is the bucket of t, or -1 outside the window.
func (w window) index(t time.Time) int {
	if t.Before(w.start) {
		return -1
	}
	i := int(t.Sub(w.start) / w.step)
	if i >= w.n {
		return -1
	}
	return i
}

// ticks returns the buckets to label on an x axis: those that start on a round time
// (every 10 minutes, every 2 hours…), at most max of them.
func (w window) ticks(max int) []int {
	for _, every := range []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		if every < w.step || time.Duration(w.n)*w.step/every > time.Duration(max) {
			continue
		}
		var out []int
		for i := 0; i < w.n; i++ {
			if t := w.start.Add(time.Duration(i) * w.step); t.Truncate(every).Equal(t) {
				out = append(out, i)
			}
		}
		return out
	}
	return []int{0}
}

// statusSeries counts deliveries per bucket of their creation, stacked by what became of
// them.
func statusSeries(ds []*consign.Delivery, w window) []series {
	ok, failed, waiting, other := make([]float64, w.n), make([]float64, w.n), make([]float64, w.n), make([]float64, w.n)
	for _, d := range ds {
		i := w.index(d.CreatedAt)
		if i < 0 {
			continue
		}
		switch d.Status {
		case consign.StatusSucceeded:
			ok[i]++
		case consign.StatusFailed:
			failed[i]++
		case consign.StatusPending, consign.StatusDelivering, consign.StatusPaused:
			waiting[i]++
		default:
			other[i]++
		}
	}
	return []series{
		{Name: "succeeded", Class: "s-ok", Values: ok},
		{Name: "failed", Class: "s-fail", Values: failed},
		{Name: "waiting (pending, paused)", Class: "s-wait", Values: waiting},
		{Name: "superseded or cancelled", Class: "s-other", Values: other},
	}
}

func (w window) labels(layout string) []string {
	out := make([]string, w.n)
	for i := range out {
		out[i] = w.start.Add(time.Duration(i) * w.step).UTC().Format(layout)
	}
	return out
}

// scanDeliveries reads an org's deliveries that match f, newest first, back to since or
// until max were read; truncated says the window held more.
func (s *Server) scanDeliveries(ctx context.Context, orgID string, f store.DeliveryFilter, since time.Time, max int) ([]*consign.Delivery, bool, error) {
	var out []*consign.Delivery
	cursor := ""
	for len(out) < max {
		f.Page = store.Page{Limit: min(1000, max-len(out)), Cursor: cursor}
		ds, err := s.store.DeliveryList(ctx, orgID, f)
		if err != nil {
			return nil, false, err
		}
		for _, d := range ds {
			if d.CreatedAt.Before(since) {
				return out, false, nil
			}
			out = append(out, d)
		}
		if len(ds) < f.Page.Limit {
			return out, false, nil
		}
		cursor = ds[len(ds)-1].ID
	}
	return out, true, nil
}

type overviewPage struct {
	Range     string
	Ranges    []string
	Created   int      // deliveries created in the range, all endpoints
	Attempts  int      // attempts made in the range
	Failed    int      // of which failed
	FailRate  *float64 // Failed/Attempts
	Volume    template.HTML
	Failures  template.HTML
	Latency   template.HTML
	Attention []*consign.Endpoint
	Endpoints int
	Sample    int // deliveries whose attempts the failure and latency charts read
}

var overviewRanges = map[string]struct{ length, step time.Duration }{
	"1h":  {time.Hour, time.Minute},
	"6h":  {6 * time.Hour, 5 * time.Minute},
	"24h": {24 * time.Hour, 20 * time.Minute},
}

// overview shows the org at a glance: volume, failure rate and latency over a range
// (default the last hour, per minute), and the endpoints that need attention.
func (s *Server) overview(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	p := overviewPage{Range: r.URL.Query().Get("range"), Ranges: []string{"1h", "6h", "24h"}}
	rg, ok := overviewRanges[p.Range]
	if !ok {
		p.Range, rg = "1h", overviewRanges["1h"]
	}
	now := s.now()
	win := newWindow(now, rg.length, rg.step)
	perWhat := "minute"
	layout := "15:04"
	if rg.step != time.Minute {
		perWhat = durText(rg.step)
	}

	eps, err := s.manage.Endpoints(ctx, q.org.ID, store.Page{Limit: 500})
	if err != nil {
		return err
	}
	p.Endpoints = len(eps)
	for _, e := range eps {
		if !e.Active || e.Health != consign.HealthHealthy {
			p.Attention = append(p.Attention, e)
		}
		// Exact totals for the range come from each endpoint's stats.
		st, err := store.EndpointStats(ctx, s.store, q.org.ID, e.ID, now.Add(-rg.length))
		if err != nil {
			return err
		}
		for _, n := range st.Deliveries {
			p.Created += n
		}
		p.Attempts += st.Attempts
		p.Failed += st.Failed
	}
	if p.Attempts > 0 {
		rate := float64(p.Failed) / float64(p.Attempts)
		p.FailRate = &rate
	}

	ds, truncated, err := s.scanDeliveries(ctx, q.org.ID, store.DeliveryFilter{}, win.start, overviewScan)
	if err != nil {
		return err
	}
	labels, ticks := win.labels(layout), win.ticks(8)
	p.Volume = chart{Title: "Deliveries created per " + perWhat + ", by what became of them", Kind: chartBars, Unit: "deliveries",
		Labels: labels, Ticks: ticks, Integer: true, Series: statusSeries(ds, win), Width: 1100, Height: 200, Truncated: truncated}.SVG()

	// Failures and latency: the attempts of the newest deliveries that made any.
	good, failed := make([]float64, win.n), make([]float64, win.n)
	lat := make([][]float64, win.n)
	for _, d := range ds {
		if p.Sample == attemptScan {
			truncated = true
			break
		}
		if d.AttemptsCount == 0 {
			continue
		}
		full, err := s.store.DeliveryGet(ctx, q.org.ID, d.ID)
		if consign.ErrorCode(err) == consign.ENOTFOUND {
			continue // deleted meanwhile
		} else if err != nil {
			return err
		}
		p.Sample++
		for _, a := range full.Attempts {
			i := win.index(a.StartedAt)
			if i < 0 {
				continue
			}
			if a.Response.OK() {
				good[i]++
			} else {
				failed[i]++
			}
			lat[i] = append(lat[i], float64(a.DurationMS))
		}
	}
	rate := make([]float64, win.n)
	p50, p95 := make([]float64, win.n), make([]float64, win.n)
	for i := range rate {
		rate[i], p50[i], p95[i] = math.NaN(), math.NaN(), math.NaN()
		if n := good[i] + failed[i]; n > 0 {
			rate[i] = 100 * failed[i] / n
		}
		if len(lat[i]) > 0 {
			slices.Sort(lat[i])
			p50[i], p95[i] = quantile(lat[i], 0.5), quantile(lat[i], 0.95)
		}
	}
	p.Failures = chart{Title: "Failed attempts, % per " + perWhat, Kind: chartLines, Unit: "%", Max: 100, Labels: labels,
		Ticks: win.ticks(6), Series: []series{{Name: "failed attempts", Class: "s-fail", Values: rate}},
		Width: 520, Height: 180, Truncated: truncated}.SVG()
	p.Latency = chart{Title: "Attempt latency per " + perWhat, Kind: chartLines, Unit: "ms", Labels: labels, Ticks: win.ticks(6), Integer: true,
		Series: []series{{Name: "p50", Class: "s-p50", Values: p50}, {Name: "p95", Class: "s-p95", Values: p95}},
		Width:  520, Height: 180, Truncated: truncated}.SVG()

	s.render(w, r, q, http.StatusOK, "overview", fmt.Sprintf("Overview of %s", q.org.Name), p)
	return nil
}

// quantile returns the q-quantile of sorted values (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}
