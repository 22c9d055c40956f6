package console

import (
	"html/template"
	"math"
	"strconv"
	"time"

	"github.com/dynamo-go/dynamo/internal/bytesize"
)

var funcs = template.FuncMap{
	"bytes": bytesize.Format,
	"pct": func(f float64) string {
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return "—"
		}
		return formatFloat(100*f, 1) + "%"
	},
	"unix": func(sec int64) string {
		if sec <= 0 {
			return "—"
		}
		return time.Unix(sec, 0).UTC().Format("2006-01-02 15:04:05")
	},
	"unixns": func(ns int64) string {
		if ns <= 0 {
			return "—"
		}
		return time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05")
	},
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"timep": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"seconds": func(a, b int64) string {
		if a <= 0 || b < a {
			return "—"
		}
		return (time.Duration(b-a) * time.Second).String()
	},
	"nsdur": func(a, b int64) string {
		if a <= 0 || b < a {
			return "—"
		}
		return time.Duration(b - a).Round(time.Millisecond).String()
	},
	"path": pathSegment,
	"frac": frac,
	"occ": func(used, quota int64) string {
		if quota <= 0 {
			return "—"
		}
		return formatFloat(100*frac(used, quota), 1) + "%"
	},
	"wm": func(f float64) string {
		if f <= 0 {
			return "—"
		}
		return formatFloat(100*f, 0) + "%"
	},
}

func formatFloat(f float64, prec int) string { return strconv.FormatFloat(f, 'f', prec, 64) }
