package webdav

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

func TestDigestParsing(t *testing.T) {
	for _, tc := range []struct {
		hdr  []string
		want string
		ok   bool
	}{
		{[]string{"adler32=0a1b2c3d"}, "0a1b2c3d", true},
		{[]string{"MD5=1B2M2Y8AsgTpgAmY7PhCfg==, ADLER32=A1B2C3"}, "00a1b2c3", true},
		{[]string{"md5=x", "adler32=ABCDEF01"}, "abcdef01", true},
		{[]string{"adler32=AAAAAQ=="}, "00000001", true}, // base64 form
		{[]string{"md5=1B2M2Y8AsgTpgAmY7PhCfg=="}, "", false},
		{nil, "", false},
	} {
		v, ok := digest(tc.hdr, "adler32")
		if ok != tc.ok {
			t.Errorf("digest(%q) found=%v", tc.hdr, ok)
			continue
		}
		if !ok {
			continue
		}
		got, err := normAdler32(v)
		if err != nil || got != tc.want {
			t.Errorf("digest(%q) = %q, %v; want %q", tc.hdr, got, err, tc.want)
		}
	}
	if _, err := normAdler32("not-hex!"); err == nil {
		t.Error("garbage digest accepted")
	}
}

func TestMarkers(t *testing.T) {
	ctx := context.Background()
	var seen []int64
	ok := "Perf Marker\nTimestamp: 1\nStripe Bytes Transferred: 100\nEnd\nPerf Marker\nStripe Bytes Transferred: 250\nEnd\nsuccess: Created\n"
	if err := readMarkers(ctx, "x", bufio.NewScanner(strings.NewReader(ok)), func(n int64) { seen = append(seen, n) }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[1] != 250 {
		t.Fatalf("progress = %v", seen)
	}
	err := readMarkers(ctx, "x", bufio.NewScanner(strings.NewReader("Perf Marker\nfailure: source: No such file or directory\n")), nil)
	if !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("failure line: %v, want ErrNotFound", err)
	}
	err = readMarkers(ctx, "x", bufio.NewScanner(strings.NewReader("Perf Marker\nStripe Bytes Transferred: 5\n")), nil)
	if !errors.Is(err, driver.ErrServer) {
		t.Fatalf("truncated stream: %v, want ErrServer", err)
	}
}

func TestHrefPath(t *testing.T) {
	for in, want := range map[string]string{
		"/data/a%20dir/f%23x":         "/data/a dir/f#x",
		"/data/a dir/file +#%&;=.dat": "/data/a dir/file +#%&;=.dat",
		"https://se:443/data/sub/":    "/data/sub",
		"http://h/data/x%2520y":       "/data/x%20y",
	} {
		if got, _ := hrefPath(in); got != want {
			t.Errorf("hrefPath(%q) = %q, want %q", in, got, want)
		}
	}
}
