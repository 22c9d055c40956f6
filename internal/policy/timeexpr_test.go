package policy

import (
	"strings"
	"testing"
	"time"
)

func TestTimeExpr(t *testing.T) {
	now := time.Date(2026, 3, 31, 15, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
	}{
		{"now", now},
		{"today", now},
		{"yesterday", now.AddDate(0, 0, -1)},
		{"tomorrow", now.AddDate(0, 0, 1)},
		{"1 week ago", time.Date(2026, 3, 24, 15, 4, 5, 0, time.UTC)},
		{"90 days ago", time.Date(2025, 12, 31, 15, 4, 5, 0, time.UTC)},
		{"1 month ago", time.Date(2026, 3, 3, 15, 4, 5, 0, time.UTC)}, // Feb 31 normalizes like GNU date
		{"3 months ago", time.Date(2025, 12, 31, 15, 4, 5, 0, time.UTC)},
		{"12 months ago", time.Date(2025, 3, 31, 15, 4, 5, 0, time.UTC)},
		{"2 years ago", time.Date(2024, 3, 31, 15, 4, 5, 0, time.UTC)},
		{"1 fortnight ago", time.Date(2026, 3, 17, 15, 4, 5, 0, time.UTC)},
		{"5 hours ago", now.Add(-5 * time.Hour)},
		{"30 min ago", now.Add(-30 * time.Minute)},
		{"10 seconds ago", now.Add(-10 * time.Second)},
		{"1 week 2 days ago", time.Date(2026, 3, 22, 15, 4, 5, 0, time.UTC)},
		{"2 days", time.Date(2026, 4, 2, 15, 4, 5, 0, time.UTC)},
		{"  1   Week   AGO ", time.Date(2026, 3, 24, 15, 4, 5, 0, time.UTC)},
		{"2016-08-17", time.Date(2016, 8, 17, 0, 0, 0, 0, time.UTC)},
		{"2016-08-17 12:30", time.Date(2016, 8, 17, 12, 30, 0, 0, time.UTC)},
		{"2016-08-17 12:30:45", time.Date(2016, 8, 17, 12, 30, 45, 0, time.UTC)},
		{"2016-08-17T12:30:45Z", time.Date(2016, 8, 17, 12, 30, 45, 0, time.UTC)},
		{"January 1", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"jan 1 2017", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"Sep 5, 2019", time.Date(2019, 9, 5, 0, 0, 0, 0, time.UTC)},
		{"17 August 2016", time.Date(2016, 8, 17, 0, 0, 0, 0, time.UTC)},
		{"@1500000000", time.Unix(1500000000, 0)},
	}
	for _, c := range cases {
		te, err := ParseTime(c.in)
		if err != nil {
			t.Errorf("ParseTime(%q): %v", c.in, err)
			continue
		}
		if got := te.Resolve(now); !got.Equal(c.want) {
			t.Errorf("ParseTime(%q).Resolve = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestTimeExprLocation(t *testing.T) {
	// Dates are midnight in the clock's location, as `date -d` used the local zone.
	loc := time.FixedZone("CET", 3600)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, loc)
	te, err := ParseTime("2016-08-17")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := te.Resolve(now).Unix(), time.Date(2016, 8, 16, 23, 0, 0, 0, time.UTC).Unix(); got != want {
		t.Errorf("got %d want %d", got, want)
	}
}

func TestTimeExprErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "empty"},
		{"1 wek ago", `unknown time unit "wek"; did you mean week?`},
		{"ago", "needs an amount"},
		{"3 ago", `"3" needs a unit`},
		{"last tuesday", "not a time expression"},
		{"2016-13-01", "not a time expression"},
		{"2016-08-17 25:00", "bad time of day"},
		{"January 40", "bad day of month"},
		{"January 1 17", "bad year"},
		{"@x", "bad unix time"},
		{"1.5 days ago", "not a time expression"},
	}
	for _, c := range cases {
		_, err := ParseTime(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseTime(%q) = %v, want error containing %q", c.in, err, c.want)
		}
	}
}
