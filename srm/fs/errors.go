package fs

import "errors"

// Errors of drivers beyond the io/fs and errno ones.
var (
	// ErrNotOnline: the file exists but its data is only on tape.
	ErrNotOnline = errors.New("file is not online (on tape only): bring it online first")
	// ErrLastCopy: purging would delete the only copy.
	ErrLastCopy = errors.New("disk copy is the only copy")
)
