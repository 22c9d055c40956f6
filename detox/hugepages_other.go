//go:build !linux

package detox

// hugePages is a no-op where transparent huge pages do not exist.
func hugePages[T any](s []T) []T { return s }
