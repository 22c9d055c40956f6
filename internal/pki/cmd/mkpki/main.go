// Command mkpki writes a throwaway grid test PKI into a directory:
//
//	go run ./internal/pki/cmd/mkpki DIR && scripts/mkproxies.sh DIR
//
// makes the CA, X509_CERT_DIR, host and user credentials (internal/pki,
// RSA keys so that grid tools can sign with them, valid 30 days), then
// the proxies and VOMS proxies real grid tools make from them. Never use
// these credentials for anything but tests.
package main

import (
	"fmt"
	"os"

	"github.com/dynamo-go/dynamo/internal/pki"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkpki DIR")
		os.Exit(2)
	}
	if err := os.MkdirAll(os.Args[1], 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "mkpki:", err)
		os.Exit(1)
	}
	if _, err := pki.GenerateWith(os.Args[1], pki.GridOptions); err != nil {
		fmt.Fprintln(os.Stderr, "mkpki:", err)
		os.Exit(1)
	}
}
