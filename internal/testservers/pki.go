package testservers

import (
	"testing"

	"github.com/dynamo-go/dynamo/internal/pki"
)

// PKI is a throwaway certificate authority with a host and a user
// credential, written as PEM files in a temp directory (see internal/pki).
type PKI = pki.PKI

// NewPKI creates a PKI in a fresh temp directory.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p, err := pki.Generate(Dir(t))
	if err != nil {
		t.Fatalf("test PKI: %v", err)
	}
	return p
}
