package inventory

import (
	"math"
	"testing"
)

// The loader's integer scanner takes what the MySQL (binary and text
// protocol) and SQLite drivers hand over for integer columns, and refuses
// what *int64 would refuse: NULL, out-of-range and non-integer values.
func TestIntColScansWhatDriversReturn(t *testing.T) {
	for _, tc := range []struct {
		src  any
		want int64
	}{
		{int64(-7), -7}, {uint64(42), 42}, {true, 1}, {false, 0}, {[]byte("123"), 123}, {"-9", -9},
		{int64(math.MaxInt64), math.MaxInt64},
	} {
		var c intCol
		if err := c.Scan(tc.src); err != nil || int64(c) != tc.want {
			t.Errorf("Scan(%#v) = %d, %v; want %d", tc.src, c, err, tc.want)
		}
	}
	for _, src := range []any{nil, uint64(math.MaxInt64) + 1, []byte("1.5"), "x", 2.5} {
		var c intCol
		if err := c.Scan(src); err == nil {
			t.Errorf("Scan(%#v) accepted %d", src, c)
		}
	}
}
