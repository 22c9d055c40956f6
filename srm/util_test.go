package srm

import (
	"strings"
	"testing"

	"bufio"
	"fmt"
	"hash/adler32"
	"io"

	"github.com/dynamo-go/dynamo/internal/gridauth"
)

func adler32Hex(b []byte) string { return fmt.Sprintf("%08x", adler32.Checksum(b)) }

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// identityOf returns the test user's identity as the SE authenticates it.
func identityOf(t testing.TB, se *testSE) *gridauth.Identity {
	t.Helper()
	return &gridauth.Identity{DN: "/DC=org/DC=example/CN=Test User"}
}

// mustNode decodes a request part for op from its inner XML.
func mustNode(t testing.TB, op, inner string) *node {
	t.Helper()
	env := `<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><s:` + op + ` xmlns:s="` + NSSRM + `"><` + op + `Request>` +
		inner + `</` + op + `Request></s:` + op + `></e:Body></e:Envelope>`
	_, n, err := decodeEnvelope(strings.NewReader(env))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
