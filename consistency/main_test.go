package consistency

import "flag"

var (
	benchFiles   = flag.Int("files", 1_000_000, "files for BenchmarkDiff and BenchmarkExtract")
	benchReaders = flag.Int("readers", 2, "inventory readers for BenchmarkExtract")
)
