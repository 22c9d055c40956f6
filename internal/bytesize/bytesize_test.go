package bytesize

import (
	"testing"

	"github.com/dustin/go-humanize"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "123": 123, "123 B": 123, "1.5 TB": 1.5e12, "500GB": 5e11, "500 gb": 5e11,
		"2TiB": 2 << 40, "1 kib": 1024, " 7 MB ": 7e6, "1.5 PB": 1.5e15,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// TestParseIsStricterThanHumanize: go-humanize reads each of these as some
// number; a quota written so is a typo, and Parse refuses it.
func TestParseIsStricterThanHumanize(t *testing.T) {
	for _, in := range []string{"5k", "5 K", "1,000 MB", "5 EB", "5 MiB/s", "-1", "-1 GB", "NaN", "Inf TB", "1e30 PB", "", "GB", "1.5.2 TB", "3 XB"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q): no error", in)
		}
	}
	for _, in := range []string{"5k", "1,000 MB", "5 EB"} {
		if _, err := humanize.ParseBytes(in); err != nil {
			t.Errorf("humanize.ParseBytes(%q) refused it too (%v): the difference this test documents is gone", in, err)
		}
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1500: "1.5 kB", 82854982: "83 MB", 1.5e12: "1.5 TB", -2e9: "-2.0 GB"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}
