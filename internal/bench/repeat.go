package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Rounds (--repeat). On a machine shared with other work, or whose disk and CPU speed
// vary, one run's figures can differ from the next by a fifth; several rounds and their
// median say more than any one of them. Each round is a whole run on a fresh in-process
// embedded store. Then, for each figure, the round in the middle: the median of an odd
// number of rounds, and of an even number the less favourable of the two middle ones
// (the lower rate, the higher latency). CPU per unit is the middle value of the rounds'
// own (the higher of two). The backlog figure is the round whose healthy endpoint kept
// the median share of its rate (the lower of two); the search figure the round whose
// events?key= p99 is the median (the higher of two). Memory is the last round's: the
// process only grows.

// runRounds runs cfg.Repeat rounds and returns the median report.
func runRounds(ctx context.Context, cfg Config, out io.Writer) (*Report, error) {
	round := cfg
	round.Repeat = 1
	roundOut := out
	if cfg.JSON {
		round.JSON, roundOut = false, io.Discard
	}
	p := &printer{w: out, quiet: cfg.JSON}
	var reps []*Report
	var errs []error
	for i := range cfg.Repeat {
		if ctx.Err() != nil {
			break
		}
		p.printf("round %d of %d\n", i+1, cfg.Repeat)
		rep, err := runOnce(ctx, round, roundOut)
		if rep != nil {
			reps = append(reps, rep)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("round %d: %w", i+1, err))
		}
	}
	if len(reps) == 0 {
		return nil, errors.Join(errs...)
	}
	m := medianReport(reps)
	m.Config = cfg
	if cfg.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		doc := struct {
			Rounds  []*Report `json:"rounds"`
			Median  *Report   `json:"median"`
			Summary string    `json:"summary"`
		}{reps, m, m.Summary()}
		return m, errors.Join(append(errs, enc.Encode(doc))...)
	}
	p.printf("median of %d rounds, with the range over them:\n", len(reps))
	figures := []struct {
		fig figure
		get func(*Report) *Throughput
	}{
		{figLoopback, func(r *Report) *Throughput { return r.Loopback }},
		{figDeliver, func(r *Report) *Throughput { return r.Deliver }},
		{figBurst, func(r *Report) *Throughput { return r.DeliverBurst }},
		{figFilter, func(r *Report) *Throughput { return r.FilterDeliver }},
		{figTransform, func(r *Report) *Throughput { return r.TransformDeliver }},
		{figFanout, func(r *Report) *Throughput { return r.FanoutDeliver }},
		{figSingle, func(r *Report) *Throughput { return r.Single }},
		{figBatch, func(r *Report) *Throughput { return r.Batch }},
	}
	for _, f := range figures {
		if t := f.get(m); t != nil {
			// The range goes on the figure's own line, before any line under it.
			first, rest, more := strings.Cut(t.line(f.fig, cfg), "\n")
			p.printf("%s%s\n", first, spread(reps, f.get))
			if more {
				p.printf("%s\n", rest)
			}
		}
	}
	if m.Latency != nil {
		for _, line := range m.Latency.lines(cfg) {
			p.printf("%s\n", line)
		}
	}
	if m.Backlog != nil {
		p.printf("%s\n", m.Backlog.line(cfg))
	}
	if m.Memory != nil {
		p.printf("%s\n", m.Memory.line(m.Store, m.Backlog != nil))
	}
	p.printf("%s\n", m.Summary())
	return m, errors.Join(errs...)
}

// medianReport builds the report of the middle round of each figure.
func medianReport(reps []*Report) *Report {
	m := *reps[len(reps)-1] // header fields and memory: the last round's
	rate := func(get func(*Report) *Throughput) *Throughput {
		var ts []*Throughput
		for _, r := range reps {
			if t := get(r); t != nil {
				ts = append(ts, t)
			}
		}
		if len(ts) == 0 {
			return nil
		}
		slices.SortStableFunc(ts, func(a, b *Throughput) int { return cmp.Compare(a.PerSecond, b.PerSecond) })
		t := *ts[(len(ts)-1)/2]
		cpu := make([]float64, len(ts))
		for i, x := range ts {
			cpu[i] = x.CPUPerUnit
		}
		slices.Sort(cpu)
		t.CPUPerUnit = cpu[len(cpu)/2]
		return &t
	}
	m.Loopback = rate(func(r *Report) *Throughput { return r.Loopback })
	m.Deliver = rate(func(r *Report) *Throughput { return r.Deliver })
	m.DeliverBurst = rate(func(r *Report) *Throughput { return r.DeliverBurst })
	m.FanoutDeliver = rate(func(r *Report) *Throughput { return r.FanoutDeliver })
	m.FilterDeliver = rate(func(r *Report) *Throughput { return r.FilterDeliver })
	m.TransformDeliver = rate(func(r *Report) *Throughput { return r.TransformDeliver })
	m.Single = rate(func(r *Report) *Throughput { return r.Single })
	m.Batch = rate(func(r *Report) *Throughput { return r.Batch })
	m.filterShare() // of the medians
	if m.Loopback != nil {
		for _, t := range []*Throughput{m.Deliver, m.DeliverBurst, m.FilterDeliver, m.TransformDeliver, m.FanoutDeliver, m.Single} {
			if t != nil {
				t.scale(m.Loopback.PerSecond)
			}
		}
	}
	var ls []*Latency
	for _, r := range reps {
		if r.Latency != nil {
			ls = append(ls, r.Latency)
		}
	}
	m.Latency = nil
	if len(ls) > 0 {
		slices.SortStableFunc(ls, func(a, b *Latency) int { return cmp.Compare(a.SendP99, b.SendP99) })
		l := *ls[len(ls)/2]
		m.Latency = &l
	}
	var bs []*Backlog
	for _, r := range reps {
		if r.Backlog != nil {
			bs = append(bs, r.Backlog)
		}
	}
	m.Backlog = nil
	if len(bs) > 0 {
		slices.SortStableFunc(bs, func(a, b *Backlog) int { return cmp.Compare(a.Share, b.Share) })
		b := *bs[(len(bs)-1)/2]
		m.Backlog = &b
	}
	var ss []*Search
	for _, r := range reps {
		if r.Search != nil {
			ss = append(ss, r.Search)
		}
	}
	m.Search = nil
	if len(ss) > 0 {
		slices.SortStableFunc(ss, func(a, b *Search) int { return cmp.Compare(a.Events.P99, b.Events.P99) })
		s := *ss[len(ss)/2]
		m.Search = &s
	}
	m.Problems = nil
	for _, r := range reps {
		m.Problems = append(m.Problems, r.Problems...)
	}
	return &m
}

// spread is the text of a rate figure's range over the rounds.
func spread(reps []*Report, get func(*Report) *Throughput) string {
	lo, hi := math.Inf(1), math.Inf(-1)
	cpuLo, cpuHi := math.Inf(1), math.Inf(-1)
	n := 0
	for _, r := range reps {
		t := get(r)
		if t == nil {
			continue
		}
		n++
		lo, hi = min(lo, t.PerSecond), max(hi, t.PerSecond)
		if t.CPUPerUnit > 0 {
			cpuLo, cpuHi = min(cpuLo, t.CPUPerUnit), max(cpuHi, t.CPUPerUnit)
		}
	}
	s := fmt.Sprintf(" [%d rounds: %s–%s /s", n, commas(int64(math.Round(lo))), commas(int64(math.Round(hi))))
	if cpuHi > 0 {
		s += fmt.Sprintf(", %.0f–%.0f µs of CPU each", cpuLo, cpuHi)
	}
	return s + "]"
}
