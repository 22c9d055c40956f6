package consistency

import (
	"testing"
)

// BenchmarkDiff10M is the figure; run with
//
//	go test ./consistency -run '^$' -bench Diff -benchtime 1x -files 10000000
func BenchmarkDiff(b *testing.B) {
	for range b.N {
		res, err := Bench(b.TempDir(), *benchFiles, 64<<20)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.Spool.Seconds(), "spool-s")
		b.ReportMetric(res.Diff.Seconds(), "diff-s")
		b.ReportMetric(float64(res.PeakHeap)/(1<<20), "peakheap-MiB")
		b.ReportMetric(float64(res.MaxRSS)/(1<<20), "maxrss-MiB")
		b.ReportMetric(float64(res.Runs), "runs")
	}
}
