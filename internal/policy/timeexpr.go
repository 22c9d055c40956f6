package policy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TimeExpr is a parsed time expression, resolved against a clock value by
// Resolve. Dynamo handed these strings to GNU `date -d`; we accept the forms
// the CMS policies use plus the common GNU ones, and reject everything else at
// load time instead of failing at run time:
//
//	now | today | yesterday | tomorrow
//	N unit [N unit ...] [ago]      unit: second(s) sec(s) minute(s) min(s) hour(s)
//	                               day(s) week(s) fortnight(s) month(s) year(s)
//	YYYY-MM-DD [HH:MM[:SS]]        in the clock's location
//	RFC 3339 (2016-08-17T12:00:00Z)
//	Month D [YYYY] | D Month YYYY  month names full or abbreviated; no year = this year
//	@UNIXSECONDS
//
// Calendar units (day, week, month, year) move the wall clock like GNU date
// (2026-03-31 minus 1 month is 2026-03-03); second/minute/hour move absolute
// time. Dates without a time of day mean midnight.
type TimeExpr struct {
	Text string // as written

	abs    bool // absolute date (year == 0 for "this year")
	unix   bool // @seconds
	secs   int64
	year   int
	month  time.Month
	day    int
	hh, mm int
	ss     int
	hasClk bool
	rfc    time.Time

	// relative offset, applied to now
	years, months, days int
	dur                 time.Duration
}

var timeUnits = map[string]string{
	"second": "s", "seconds": "s", "sec": "s", "secs": "s",
	"minute": "m", "minutes": "m", "min": "m", "mins": "m",
	"hour": "h", "hours": "h",
	"day": "d", "days": "d",
	"week": "w", "weeks": "w",
	"fortnight": "f", "fortnights": "f",
	"month": "M", "months": "M",
	"year": "y", "years": "y",
}

var monthNames = func() map[string]time.Month {
	m := map[string]time.Month{}
	for i := time.January; i <= time.December; i++ {
		n := strings.ToLower(i.String())
		m[n] = i
		m[n[:3]] = i
	}
	m["sept"] = time.September
	return m
}()

// ParseTime parses a time expression. The error is a plain message; the
// condition parser wraps it with a position.
func ParseTime(s string) (*TimeExpr, error) {
	text := strings.Join(strings.Fields(s), " ")
	te := &TimeExpr{Text: text}
	lw := strings.Fields(strings.ToLower(text))
	if len(lw) == 0 {
		return nil, fmt.Errorf("empty time expression")
	}
	switch {
	case len(lw) == 1 && lw[0] == "now", len(lw) == 1 && lw[0] == "today":
		return te, nil
	case len(lw) == 1 && lw[0] == "yesterday":
		te.days = -1
		return te, nil
	case len(lw) == 1 && lw[0] == "tomorrow":
		te.days = 1
		return te, nil
	case len(lw) == 1 && strings.HasPrefix(lw[0], "@"):
		n, err := strconv.ParseInt(lw[0][1:], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad unix time %q", lw[0])
		}
		te.abs, te.unix, te.secs = true, true, n
		return te, nil
	}
	if t, err := time.Parse(time.RFC3339, text); err == nil && len(lw) == 1 {
		te.abs, te.rfc = true, t
		return te, nil
	}
	if ok, err := te.parseISO(lw); ok {
		return te, err
	}
	if ok, err := te.parseMonthDay(lw); ok {
		return te, err
	}
	if ok, err := te.parseRelative(lw); ok {
		return te, err
	}
	return nil, fmt.Errorf("not a time expression")
}

// parseISO handles YYYY-MM-DD [HH:MM[:SS]].
func (te *TimeExpr) parseISO(lw []string) (bool, error) {
	d, err := time.Parse("2006-01-02", lw[0])
	if err != nil {
		return false, nil
	}
	if len(lw) > 2 {
		return true, fmt.Errorf("unexpected text after the date")
	}
	te.abs, te.year, te.month, te.day = true, d.Year(), d.Month(), d.Day()
	if len(lw) == 2 {
		return true, te.parseClock(lw[1])
	}
	return true, nil
}

func (te *TimeExpr) parseClock(s string) error {
	for _, layout := range []string{"15:04:05", "15:04"} {
		if c, err := time.Parse(layout, s); err == nil {
			te.hasClk, te.hh, te.mm, te.ss = true, c.Hour(), c.Minute(), c.Second()
			return nil
		}
	}
	return fmt.Errorf("bad time of day %q (want HH:MM or HH:MM:SS)", s)
}

// parseMonthDay handles "Month D [YYYY]", "Month D, YYYY" and "D Month YYYY".
func (te *TimeExpr) parseMonthDay(lw []string) (bool, error) {
	words := make([]string, 0, len(lw))
	for _, w := range lw {
		words = append(words, strings.TrimSuffix(w, ","))
	}
	mi, di := 0, 1
	if _, ok := monthNames[words[0]]; !ok {
		if len(words) < 2 {
			return false, nil
		}
		if _, ok := monthNames[words[1]]; !ok {
			return false, nil
		}
		mi, di = 1, 0
	}
	if len(words) < 2 || len(words) > 3 {
		return true, fmt.Errorf("want \"Month Day [Year]\"")
	}
	day, err := strconv.Atoi(words[di])
	if err != nil || day < 1 || day > 31 {
		return true, fmt.Errorf("bad day of month %q", words[di])
	}
	te.abs, te.month, te.day = true, monthNames[words[mi]], day
	if len(words) == 3 {
		y, err := strconv.Atoi(words[2])
		if err != nil || y < 1970 || y > 9999 {
			return true, fmt.Errorf("bad year %q", words[2])
		}
		te.year = y
	}
	return true, nil
}

// parseRelative handles "N unit [N unit ...] [ago]", also with +N / -N.
func (te *TimeExpr) parseRelative(lw []string) (bool, error) {
	ago := lw[len(lw)-1] == "ago"
	if ago {
		lw = lw[:len(lw)-1]
	}
	if len(lw) == 0 {
		return true, fmt.Errorf("\"ago\" needs an amount and a unit before it")
	}
	if _, err := strconv.Atoi(lw[0]); err != nil {
		if _, unit := timeUnits[lw[0]]; !unit {
			return false, nil
		}
	}
	sign := 1
	if ago {
		sign = -1
	}
	for i := 0; i < len(lw); i++ {
		n := 1
		if v, err := strconv.Atoi(lw[i]); err == nil {
			n = v
			i++
			if i == len(lw) {
				return true, fmt.Errorf("%q needs a unit (days, weeks, months, ...)", lw[i-1])
			}
		}
		u, ok := timeUnits[lw[i]]
		if !ok {
			if h := didYouMean(lw[i], mapKeys(timeUnits)); h != "" {
				return true, fmt.Errorf("unknown time unit %q; did you mean %s?", lw[i], h)
			}
			return true, fmt.Errorf("unknown time unit %q", lw[i])
		}
		n *= sign
		switch u {
		case "s":
			te.dur += time.Duration(n) * time.Second
		case "m":
			te.dur += time.Duration(n) * time.Minute
		case "h":
			te.dur += time.Duration(n) * time.Hour
		case "d":
			te.days += n
		case "w":
			te.days += 7 * n
		case "f":
			te.days += 14 * n
		case "M":
			te.months += n
		case "y":
			te.years += n
		}
	}
	return true, nil
}

// Resolve returns the instant the expression denotes when the clock reads
// now. Dates are interpreted in now's location.
func (te *TimeExpr) Resolve(now time.Time) time.Time {
	switch {
	case te.unix:
		return time.Unix(te.secs, 0).In(now.Location())
	case !te.rfc.IsZero():
		return te.rfc
	case te.abs:
		y := te.year
		if y == 0 {
			y = now.Year()
		}
		return time.Date(y, te.month, te.day, te.hh, te.mm, te.ss, 0, now.Location())
	}
	return now.AddDate(te.years, te.months, te.days).Add(te.dur)
}

// String returns the expression as written.
func (te *TimeExpr) String() string { return te.Text }

// mapKeys returns the sorted keys, so typo hints are deterministic.
func mapKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
