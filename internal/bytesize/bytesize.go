// Package bytesize parses and prints byte counts: the one reading of "500
// GB" for configuration, the policy language and test scenarios, and the
// one way sizes are shown by the CLI, the console and messages.
//
// Parse is stricter than go-humanize's ParseBytes, which accepts "5k",
// "1,000 MB" and "5 EB" and would let a typo in a quota through as some
// other number; Format is go-humanize's (decimal units, as CMS quotas are).
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
)

// units are the accepted suffixes, case-insensitive. CMS quotas are
// decimal (1 TB = 1e12 bytes); binary units are there for completeness.
var units = map[string]float64{
	"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
}

// Parse reads "123", "1.5 TB", "500GB" or "2 TiB" into bytes, rounded to a
// whole byte. A negative, non-finite or too large number, or any other
// unit, is an error.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] >= 'a' && t[i-1] <= 'z' || t[i-1] >= 'A' && t[i-1] <= 'Z') {
		i--
	}
	mult, ok := units[strings.ToLower(t[i:])]
	f, err := strconv.ParseFloat(strings.TrimSpace(t[:i]), 64)
	if !ok || err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a size such as 500 GB, 1.5 TB or 2 TiB", s)
	}
	return int64(math.Round(f * mult)), nil
}

// Format prints n in decimal units ("1.5 TB", "83 MB", "512 B").
func Format(n int64) string {
	if n < 0 {
		return "-" + humanize.Bytes(uint64(-n))
	}
	return humanize.Bytes(uint64(n))
}
