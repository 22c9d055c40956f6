// Package all registers every storage driver: blank-import it in binaries
// that open sites by URL (file://, davs://, https://, dav://, http://,
// root://, srm://).
package all

import (
	// Each import registers its URL schemes in init.
	_ "github.com/dynamo-go/dynamo/fileop/driver/local"
	_ "github.com/dynamo-go/dynamo/fileop/driver/srm"
	_ "github.com/dynamo-go/dynamo/fileop/driver/webdav"
	_ "github.com/dynamo-go/dynamo/fileop/driver/xrootd"
)
