package srm

import (
	"fmt"
	"hash/adler32"
)

func adler32Hex(b []byte) string { return fmt.Sprintf("%08x", adler32.Checksum(b)) }
