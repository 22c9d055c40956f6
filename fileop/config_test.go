package fileop_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

func TestConfigFiles(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"unknown_key.bad.yaml", "unknown_key.bad.yaml:2:1: batchsize: unknown key"},
		{"bad_backend.bad.yaml", `fileop.backend: "ftp"`},
		{"bad_limits.bad.yaml", "fileop.per_link: -1"},
		{"bad_limits.bad.yaml", "retry_base/retry_max"},
		{"fts3_no_url.bad.yaml", "fileop.fts3.url"},
		{"bad_pfn.bad.yaml", "sites.T2_X.pfn"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := yamlconf.Load(filepath.Join("testdata", tc.file), fileop.DecodeConfig)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
	c, err := yamlconf.Load("testdata/good.yaml", fileop.DecodeConfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.Interval != 5*time.Second || c.PerLink != 20 || c.Native.Workers != 8 || c.MaxPending != 2000 || c.Backend != "native" {
		t.Fatalf("decoded %+v", c)
	}
}

func TestSelectSource(t *testing.T) {
	disk1, disk2, tape := fileop.SourceCandidate{Site: 1}, fileop.SourceCandidate{Site: 2}, fileop.SourceCandidate{Site: 3, Tape: true}
	fail := func(site int32, n int, rec bool) fileop.SourceFailure {
		return fileop.SourceFailure{Site: site, Failures: n, Recoverable: rec}
	}
	for _, tc := range []struct {
		name   string
		cands  []fileop.SourceCandidate
		fails  []fileop.SourceFailure
		want   int32
		reason fileop.HoldReason
	}{
		{"none", nil, nil, 0, fileop.HoldNoSource},
		{"disk before tape", []fileop.SourceCandidate{tape, disk1}, nil, 1, ""},
		{"untried disk first", []fileop.SourceCandidate{disk1, disk2, tape}, []fileop.SourceFailure{fail(1, 1, true)}, 2, ""},
		{"untried tape before tried disk", []fileop.SourceCandidate{disk1, tape}, []fileop.SourceFailure{fail(1, 1, true)}, 3, ""},
		{"fewest failures", []fileop.SourceCandidate{disk1, disk2}, []fileop.SourceFailure{fail(1, 3, true), fail(2, 2, true)}, 2, ""},
		{"tie prefers disk", []fileop.SourceCandidate{tape, disk1}, []fileop.SourceFailure{fail(3, 1, true), fail(1, 1, true)}, 1, ""},
		{"irrecoverable skipped", []fileop.SourceCandidate{disk1, disk2}, []fileop.SourceFailure{fail(1, 1, false), fail(2, 4, true)}, 2, ""},
		{"all irrecoverable", []fileop.SourceCandidate{disk1, disk2}, []fileop.SourceFailure{fail(1, 1, false), fail(2, 1, false)}, 0, fileop.HoldAllFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[int32]fileop.SourceFailure{}
			for _, f := range tc.fails {
				m[f.Site] = f
			}
			got, reason := fileop.SelectSource(tc.cands, m)
			if int32(got) != tc.want || reason != tc.reason {
				t.Fatalf("got %d %q, want %d %q", got, reason, tc.want, tc.reason)
			}
		})
	}
}
