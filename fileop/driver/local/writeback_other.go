//go:build !linux

package local

import "os"

// earlyWriteback is a plain writer where sync_file_range does not exist.
type earlyWriteback struct{ f *os.File }

func (w *earlyWriteback) Write(p []byte) (int, error) { return w.f.Write(p) }
