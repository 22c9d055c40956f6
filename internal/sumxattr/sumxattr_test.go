package sumxattr

import (
	"testing"
	"time"
)

func TestRoundTripAndStaleness(t *testing.T) {
	mt := time.Unix(1_700_000_000, 123)
	v := Encode("0a1b2c3d", mt)
	if s, ok := Decode(v, mt); !ok || s != "0a1b2c3d" {
		t.Fatalf("Decode(%q) = %q %v", v, s, ok)
	}
	if _, ok := Decode(v, mt.Add(time.Nanosecond)); ok {
		t.Error("a sum stored for another mtime was accepted")
	}
	for _, bad := range []string{"", "0a1b2c3d", "zzzzzzzz 1700000000000000123", "0a1b2c3 1700000000000000123"} {
		if _, ok := Decode([]byte(bad), mt); ok {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
}

func TestLegacy(t *testing.T) {
	mt := time.Unix(1_700_000_000, 5)
	v := []byte("0a1b2c3d 42 1700000000000000005")
	if s, ok := DecodeLegacy(v, 42, mt); !ok || s != "0a1b2c3d" {
		t.Fatalf("DecodeLegacy = %q %v", s, ok)
	}
	if _, ok := DecodeLegacy(v, 43, mt); ok {
		t.Error("a legacy sum for another size was accepted")
	}
}
