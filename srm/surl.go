package srm

import "github.com/dynamo-go/dynamo/srm/internal/sfn"

// ErrBadSURL is returned by ParseSURL for anything that is not a usable SURL.
var ErrBadSURL = sfn.ErrBadSURL

// SURL is a parsed storage URL.
type SURL = sfn.SURL

// ParseSURL parses the SURL forms seen in the wild (see sfn.ParseSURL).
func ParseSURL(s string) (SURL, error) { return sfn.ParseSURL(s) }
