package driver

import "strings"

// TempPrefix starts the name of a file being written by a driver that
// uploads to a temporary name and renames it into place (file://,
// root://). A file with this prefix is never a replica: either a transfer
// is writing it right now, or one was interrupted (a killed process) and
// left it behind. List returns such files, so that the consistency check
// can report them and the file-operation daemon can remove leftovers;
// consumers that want only real files skip names for which IsTemporary is
// true.
const TempPrefix = ".dynamo-tmp."

// IsTemporary reports whether name (a base name) is a driver's temporary
// upload.
func IsTemporary(name string) bool { return strings.HasPrefix(name, TempPrefix) }
