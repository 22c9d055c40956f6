// Package sumxattr is the one format of the adler32 cached in a file's
// extended attribute, shared by the storage element's POSIX driver
// (srm/fs/posixfs) and fileop's file:// driver, which may well look at the
// same files: a sum one of them stores, the other finds.
//
// The value is "<8 hex digits> <mtime in ns>": the mtime it was computed
// for, so that a file rewritten in place by another tool (which keeps the
// attribute) is noticed and its sum computed again.
package sumxattr

import (
	"strconv"
	"strings"
	"time"
)

// Name is the extended attribute holding the sum.
const Name = "user.adler32"

// Encode returns the attribute value of sum for a file of mtime.
func Encode(sum string, mtime time.Time) []byte {
	return []byte(sum + " " + strconv.FormatInt(mtime.UnixNano(), 10))
}

// Decode returns the sum in v if it was stored for mtime.
func Decode(v []byte, mtime time.Time) (string, bool) {
	sum, mt, ok := strings.Cut(string(v), " ")
	if !ok || mt != strconv.FormatInt(mtime.UnixNano(), 10) || len(sum) != 8 {
		return "", false
	}
	if _, err := strconv.ParseUint(sum, 16, 32); err != nil {
		return "", false
	}
	return sum, true
}

// LegacyName is the attribute fileop's file:// driver wrote before it
// shared Name, as "<sum> <size> <mtime in ns>". Files written then still
// carry it, so readers fall back to it (DecodeLegacy); nothing writes it.
const LegacyName = "user.dynamo.adler32"

// DecodeLegacy returns the sum in a LegacyName value if it was stored for
// a file of this size and mtime.
func DecodeLegacy(v []byte, size int64, mtime time.Time) (string, bool) {
	f := strings.Fields(string(v))
	if len(f) != 3 || f[1] != strconv.FormatInt(size, 10) || f[2] != strconv.FormatInt(mtime.UnixNano(), 10) || len(f[0]) != 8 {
		return "", false
	}
	return f[0], true
}
