package srm

import (
	"bufio"
	"fmt"
	"hash/adler32"
	"io"
)

func adler32Hex(b []byte) string { return fmt.Sprintf("%08x", adler32.Checksum(b)) }

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
