package detox

import (
	"strings"
	"testing"
)

// Both shapes of a feed decode to the same records; a bad record is named
// by its position and nothing of the feed is returned.
func TestDecodeAccessFeed(t *testing.T) {
	array := `[{"dataset": "/A/B-v1/AOD", "site": "T2_X", "count": 3, "at": "2026-11-01T10:00:00Z"},
 {"dataset": "/C/D-v1/RAW", "site": "T2_Y", "count": 1, "at": "2026-11-02T00:00:00Z"}]`
	lines := "\n  {\"dataset\": \"/A/B-v1/AOD\", \"site\": \"T2_X\", \"count\": 3, \"at\": \"2026-11-01T10:00:00Z\"}\n" +
		"{\"dataset\": \"/C/D-v1/RAW\", \"site\": \"T2_Y\", \"count\": 1, \"at\": \"2026-11-02T00:00:00Z\"}\n"
	for name, feed := range map[string]string{"array": array, "lines": lines} {
		accs, err := DecodeAccessFeed(strings.NewReader(feed))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(accs) != 2 || accs[0].Count != 3 || accs[1].Dataset != "/C/D-v1/RAW" || accs[1].At.IsZero() {
			t.Fatalf("%s: %+v", name, accs)
		}
	}
	for feed, want := range map[string]string{
		"":     "empty feed",
		"  \n": "empty feed",
		`{"dataset": "/A/B-v1/AOD", "site": "T2_X", "count": 1, "at": "2026-11-01T10:00:00Z"}` + "\n" + `{"dataset": "/A/B-v1/AOD", "site": "T2_X", "colour": 1}`:                        "record 2",
		`[{"dataset": "/A/B-v1/AOD", "site": "T2_X", "count": 1, "at": "2026-11-01T10:00:00Z"}, {"dataset": "not a dataset", "site": "T2_X", "count": 1, "at": "2026-11-01T10:00:00Z"}]`: "record 2",
		`{"dataset": "/A/B-v1/AOD", "site": "T2_X", "count": 1}`: "record 1",
	} {
		accs, err := DecodeAccessFeed(strings.NewReader(feed))
		if err == nil || !strings.Contains(err.Error(), want) || accs != nil {
			t.Errorf("feed %q: %v %v, want an error with %q", feed, accs, err, want)
		}
	}
}

// Any input gives records that all validate, or an error: never a panic,
// never a record that Validate refuses.
func FuzzDecodeAccessFeed(f *testing.F) {
	f.Add(`[{"dataset": "/A/B-v1/AOD", "site": "T2_X", "count": 3, "at": "2026-11-01T10:00:00Z"}]`)
	f.Add(`{"dataset": "/A/B-v1/AOD", "site": "T2_X", "at": "2026-11-01T10:00:00Z"}` + "\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, feed string) {
		accs, err := DecodeAccessFeed(strings.NewReader(feed))
		if err != nil {
			return
		}
		for _, a := range accs {
			if err := a.Validate(); err != nil {
				t.Fatalf("decoded record does not validate: %+v: %v", a, err)
			}
		}
	})
}
