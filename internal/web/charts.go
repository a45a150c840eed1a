package web

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Charts are inline SVG drawn on the server: no script, no external service, and they
// print. Colours come from CSS classes (app.css), so the page's stylesheet keeps them
// legible in both colour schemes; each chart carries a text summary for screen readers,
// and each bar or point a <title> with its value.

type chartKind int

const (
	chartBars  chartKind = iota // stacked bars, one stack per bucket
	chartLines                  // one line per series; NaN values break the line
)

type series struct {
	Name   string
	Class  string // CSS class giving the colour: s-ok, s-fail, s-wait, s-other, s-p50, s-p95
	Values []float64
}

type chart struct {
	Title     string
	Kind      chartKind
	Unit      string // of the y axis: "deliveries", "%", "ms"
	Max       float64
	Labels    []string // one per bucket
	Ticks     []int    // buckets whose label the x axis shows; default about six
	Integer   bool     // values are counts: the y axis shows whole numbers
	Series    []series
	Width     int
	Height    int
	Spark     bool // a small chart without axes, for tables
	Truncated bool // drawn from part of the data
}

// SVG renders the chart (with its caption and legend unless it is a sparkline).
func (c chart) SVG() template.HTML {
	n := len(c.Labels)
	if n == 0 {
		return ""
	}
	top := c.Max
	if top == 0 {
		for i := 0; i < n; i++ {
			v := 0.0
			for _, s := range c.Series {
				x := s.Values[i]
				if math.IsNaN(x) {
					continue
				}
				if c.Kind == chartBars {
					v += x
				} else {
					v = math.Max(v, x)
				}
			}
			top = math.Max(top, v)
		}
		top = niceCeil(top)
		if c.Integer && top < 2 {
			top = 2
		}
	}
	left, right, upper, bottom := 48.0, 18.0, 8.0, 24.0
	if c.Spark {
		left, right, upper, bottom = 0, 0, 1, 1
	}
	pw, ph := float64(c.Width)-left-right, float64(c.Height)-upper-bottom
	x := func(i float64) float64 { return left + i*pw/float64(n) }
	y := func(v float64) float64 { return upper + ph - v/top*ph }

	var b strings.Builder
	summary := c.summary()
	esc := template.HTMLEscapeString
	if !c.Spark {
		fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s</figcaption>`, esc(c.Title))
	}
	fmt.Fprintf(&b, `<svg class="chart-svg%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s"><title>%s</title>`,
		map[bool]string{true: " spark", false: ""}[c.Spark], c.Width, c.Height, c.Width, c.Height, esc(summary), esc(summary))
	if !c.Spark {
		// Grid and y labels at 0, half and top.
		for _, f := range []float64{0, 0.5, 1} {
			v, yy := top*f, y(top*f)
			fmt.Fprintf(&b, `<line class="grid" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, left, yy, left+pw, yy)
			if c.Integer && v != math.Trunc(v) {
				continue
			}
			fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-4, yy+4, esc(num(v)+unitSuffix(c.Unit)))
		}
		ticks := c.Ticks
		if ticks == nil {
			for i := 0; i < n; i += max(1, n/6) {
				ticks = append(ticks, i)
			}
		}
		for _, i := range ticks {
			xx := x(float64(i))
			fmt.Fprintf(&b, `<line class="tick" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, xx, upper+ph, xx, upper+ph+4)
			fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, xx, float64(c.Height)-4, esc(c.Labels[i]))
		}
	} else {
		fmt.Fprintf(&b, `<rect class="spark-bg" x="0" y="0" width="%d" height="%d"/>`, c.Width, c.Height)
		fmt.Fprintf(&b, `<line class="baseline" x1="0" y1="%.1f" x2="%d" y2="%.1f"/>`, upper+ph, c.Width, upper+ph)
	}
	switch c.Kind {
	case chartBars:
		bw := pw / float64(n)
		gap := math.Min(1, bw/4)
		for i := 0; i < n; i++ {
			base := 0.0
			for _, s := range c.Series {
				v := s.Values[i]
				if math.IsNaN(v) || v <= 0 {
					continue
				}
				y0, y1 := y(base), y(base+v)
				fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s %s</title></rect>`,
					esc(s.Class), x(float64(i))+gap/2, y1, math.Max(bw-gap, 0.5), math.Max(y0-y1, 0.5),
					esc(c.Labels[i]), esc(num(v)), esc(s.Name))
				base += v
			}
		}
	case chartLines:
		for _, s := range c.Series {
			var pts []string
			flush := func() {
				if len(pts) > 1 {
					fmt.Fprintf(&b, `<polyline class="line %s" points="%s"/>`, esc(s.Class), strings.Join(pts, " "))
				}
				pts = pts[:0]
			}
			for i, v := range s.Values {
				if math.IsNaN(v) {
					flush()
					continue
				}
				cx, cy := x(float64(i)+0.5), y(math.Min(v, top))
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", cx, cy))
				fmt.Fprintf(&b, `<circle class="dot %s" cx="%.1f" cy="%.1f" r="2.5"><title>%s: %s %s%s</title></circle>`,
					esc(s.Class), cx, cy, esc(c.Labels[i]), esc(s.Name), esc(num(v)), esc(unitSuffix(c.Unit)))
			}
			flush()
		}
	}
	b.WriteString(`</svg>`)
	if !c.Spark {
		b.WriteString(`<ul class="legend">`)
		for _, s := range c.Series {
			fmt.Fprintf(&b, `<li><span class="swatch %s" aria-hidden="true"></span>%s</li>`, esc(s.Class), esc(s.Name))
		}
		b.WriteString(`</ul>`)
		if c.Truncated {
			b.WriteString(`<p class="note">Drawn from the newest deliveries only: the range holds more than the dashboard reads for a chart.</p>`)
		}
		b.WriteString(`</figure>`)
	}
	// Every string written above was escaped, and every number formatted by us.
	return template.HTML(b.String())
}

// summary says in words what the chart shows, for screen readers and tooltips.
func (c chart) summary() string {
	n := len(c.Labels)
	var parts []string
	for _, s := range c.Series {
		total, peak, peakAt, last, seen := 0.0, math.Inf(-1), "", math.NaN(), 0
		for i, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			seen++
			total += v
			last = v
			if v > peak {
				peak, peakAt = v, c.Labels[i]
			}
		}
		switch {
		case seen == 0:
			parts = append(parts, s.Name+": no data")
		case c.Kind == chartBars:
			parts = append(parts, fmt.Sprintf("%s: %s in total, at most %s (at %s)", s.Name, num(total), num(peak), peakAt))
		default:
			parts = append(parts, fmt.Sprintf("%s: latest %s%s, highest %s%s (at %s)", s.Name, num(last), unitSuffix(c.Unit), num(peak), unitSuffix(c.Unit), peakAt))
		}
	}
	return fmt.Sprintf("%s, %s to %s. %s.", c.Title, c.Labels[0], c.Labels[n-1], strings.Join(parts, "; "))
}

func unitSuffix(unit string) string {
	switch unit {
	case "%":
		return " %"
	case "ms":
		return " ms"
	}
	return ""
}

// num formats a chart value: whole numbers plainly, others with one decimal.
func num(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// niceCeil rounds a chart's top up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
