package console

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"
)

// Charts are SVG drawn here, on the server: no script, no library, and
// they render the same in any browser, offline, and in screenshots.

// chart is an SVG chart ready to embed in a page.
type chart struct {
	Title string
	SVG   template.HTML
}

// bar is one site in an occupancy chart; fractions of the quota.
type bar struct {
	Label, Href      string
	Value, Projected float64
	High, Low        float64 // 0: no watermark
	Alert            bool
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// occupancyBars draws one horizontal bar per site, 0-100 % of the quota
// (over 100 % is drawn to the edge and labelled), with the projected
// occupancy as an outline and the watermarks as ticks.
func occupancyBars(title string, bars []bar) chart {
	const labelW, barW, rowH, top, right = 200.0, 520.0, 18.0, 24.0, 70.0
	h := top + rowH*float64(len(bars)) + 8
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`,
		html.EscapeString(title), labelW+barW+right, h, labelW+barW+right, h)
	for _, p := range []float64{0, .25, .5, .75, 1} {
		x := labelW + p*barW
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" y1="%.0f" x2="%.1f" y2="%.1f"/><text class="axis" x="%.1f" y="14" text-anchor="middle">%.0f%%</text>`,
			x, top-4, x, h-4, x, p*100)
	}
	for i, r := range bars {
		y := top + rowH*float64(i)
		cls := "bar"
		if r.Alert {
			cls = "bar alert"
		}
		label := html.EscapeString(r.Label)
		if r.Href != "" {
			fmt.Fprintf(&b, `<a href="%s">`, html.EscapeString(r.Href))
		}
		fmt.Fprintf(&b, `<text class="label" x="%.0f" y="%.1f" text-anchor="end">%s</text>`, labelW-6, y+12, label)
		if r.Href != "" {
			b.WriteString(`</a>`)
		}
		fmt.Fprintf(&b, `<rect class="track" x="%.0f" y="%.1f" width="%.0f" height="%.0f"/>`, labelW, y+2, barW, rowH-5)
		fmt.Fprintf(&b, `<rect class="%s" x="%.0f" y="%.1f" width="%.1f" height="%.0f"><title>%s: %.1f%% used, %.1f%% projected</title></rect>`,
			cls, labelW, y+2, clamp(r.Value, 0, 1)*barW, rowH-5, label, r.Value*100, r.Projected*100)
		if r.Projected > 0 {
			fmt.Fprintf(&b, `<rect class="projected" x="%.0f" y="%.1f" width="%.1f" height="%.0f"/>`, labelW, y+2, clamp(r.Projected, 0, 1)*barW, rowH-5)
		}
		for _, w := range []struct {
			v   float64
			cls string
		}{{r.High, "high"}, {r.Low, "low"}} {
			if w.v > 0 {
				x := labelW + clamp(w.v, 0, 1)*barW
				fmt.Fprintf(&b, `<line class="wm %s" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"><title>%s watermark %.0f%%</title></line>`,
					w.cls, x, y, x, y+rowH-1, w.cls, w.v*100)
			}
		}
		fmt.Fprintf(&b, `<text class="value" x="%.0f" y="%.1f">%.1f%%</text>`, labelW+barW+6, y+12, r.Value*100)
	}
	if len(bars) == 0 {
		fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="%.0f">no sites</text>`, labelW, top+12)
	}
	b.WriteString(`</svg>`)
	return chart{Title: title, SVG: template.HTML(b.String())} //nolint:gosec // built from escaped parts above
}

// series is one line of a time chart.
type series struct {
	Name   string
	Points []point
	Class  string // CSS class: the line's colour
}

type point struct {
	T time.Time
	V float64
}

// timeChart draws lines over time; format renders a y value.
func timeChart(title string, ss []series, format func(float64) string, refLines map[string]float64) chart {
	const w, h, left, right, top, bottom = 760.0, 220.0, 80.0, 16.0, 12.0, 28.0
	var t0, t1 time.Time
	ymax := 0.0
	n := 0
	for _, s := range ss {
		for _, p := range s.Points {
			if t0.IsZero() || p.T.Before(t0) {
				t0 = p.T
			}
			if p.T.After(t1) {
				t1 = p.T
			}
			ymax = math.Max(ymax, p.V)
			n++
		}
	}
	for _, v := range refLines {
		ymax = math.Max(ymax, v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`,
		html.EscapeString(title), w, h, w, h)
	if n == 0 {
		fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="%.0f">no data yet</text></svg>`, left, h/2)
		return chart{Title: title, SVG: template.HTML(b.String())} //nolint:gosec // constant text
	}
	if ymax <= 0 {
		ymax = 1
	}
	ymax *= 1.1
	span := t1.Sub(t0).Seconds()
	if span <= 0 {
		span = 1
	}
	x := func(t time.Time) float64 { return left + t.Sub(t0).Seconds()/span*(w-left-right) }
	y := func(v float64) float64 { return top + (1-v/ymax)*(h-top-bottom) }
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		fmt.Fprintf(&b, `<line class="grid" x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f"/><text class="axis" x="%.0f" y="%.1f" text-anchor="end">%s</text>`,
			left, y(v), w-right, y(v), left-4, y(v)+4, html.EscapeString(format(v)))
	}
	fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="%.0f">%s</text><text class="axis" x="%.0f" y="%.0f" text-anchor="end">%s</text>`,
		left, h-8, t0.UTC().Format("2006-01-02 15:04"), w-right, h-8, t1.UTC().Format("2006-01-02 15:04 MST"))
	for name, v := range refLines {
		fmt.Fprintf(&b, `<line class="wm %s" x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f"><title>%s</title></line>`,
			html.EscapeString(name), left, y(v), w-right, y(v), html.EscapeString(name))
	}
	for i, s := range ss {
		cls := s.Class
		if cls == "" {
			cls = fmt.Sprintf("s%d", i%6)
		}
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.T), y(p.V)))
		}
		fmt.Fprintf(&b, `<polyline class="line %s" points="%s"><title>%s</title></polyline>`, cls, strings.Join(pts, " "), html.EscapeString(s.Name))
		for _, p := range s.Points {
			fmt.Fprintf(&b, `<circle class="dot %s" cx="%.1f" cy="%.1f" r="2.5"><title>%s %s: %s</title></circle>`,
				cls, x(p.T), y(p.V), html.EscapeString(s.Name), p.T.UTC().Format(time.DateTime), html.EscapeString(format(p.V)))
		}
		fmt.Fprintf(&b, `<text class="legend %s" x="%.0f" y="%.0f">%s</text>`, cls, left+8, top+12+float64(i)*14, html.EscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	return chart{Title: title, SVG: template.HTML(b.String())} //nolint:gosec // built from escaped parts above
}
