package delegation

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/gridauth"
	"github.com/dynamo-go/dynamo/internal/pki"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	p          *pki.PKI
	cas        *gridauth.CAStore
	alice, bob *pki.User
	aliceCred  tls.Certificate
	bobCred    tls.Certificate
	store      *Store
	dir        string
	clk        *clock
}

func setup(t *testing.T, maxLife time.Duration) *fixture {
	t.Helper()
	p, err := pki.Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cas, err := gridauth.LoadCADir(p.CertDir)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{p: p, cas: cas, clk: &clock{t: time.Now()}}
	if f.alice, err = p.NewUser("Alice"); err != nil {
		t.Fatal(err)
	}
	if f.bob, err = p.NewUser("Bob"); err != nil {
		t.Fatal(err)
	}
	if f.aliceCred, err = tls.LoadX509KeyPair(f.alice.Cred, f.alice.Cred); err != nil {
		t.Fatal(err)
	}
	if f.bobCred, err = tls.LoadX509KeyPair(f.bob.Cred, f.bob.Cred); err != nil {
		t.Fatal(err)
	}
	f.dir = filepath.Join(t.TempDir(), "delegations")
	f.store, err = Open(Config{Dir: f.dir, MaxLifetime: maxLife}, f.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	return f
}

// delegate runs the whole exchange for dn, signing with signer.
func (f *fixture) delegate(t *testing.T, dn, user string, signer tls.Certificate, life time.Duration) (Info, error) {
	t.Helper()
	id := ID(dn)
	csr, err := f.store.Request(id, dn)
	if err != nil {
		t.Fatal(err)
	}
	chain, _, err := SignRequest(csr, signer, life, f.clk.now())
	if err != nil {
		t.Fatal(err)
	}
	return f.store.Put(id, dn, user, chain, f.cas)
}

func TestDelegateUseAndExpire(t *testing.T) {
	f := setup(t, time.Hour)
	info, err := f.delegate(t, f.alice.DN, "alice", f.aliceCred, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if info.DN != f.alice.DN || info.User != "alice" || info.ID != ID(f.alice.DN) {
		t.Fatalf("info: %+v", info)
	}
	// Files of the owner only, in a directory of the owner only.
	st, err := os.Stat(f.dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode: %v %v", st.Mode(), err)
	}
	for _, ext := range []string{".pem", ".json"} {
		st, err := os.Stat(filepath.Join(f.dir, info.ID+ext))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode: %v %v", ext, st, err)
		}
	}
	if _, err := os.Stat(filepath.Join(f.dir, info.ID+".req")); !os.IsNotExist(err) {
		t.Errorf("pending key left behind: %v", err)
	}
	cert, got, err := f.store.Credential("alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != info.ID || len(cert.Certificate) != 2 {
		t.Fatalf("credential: %+v, %d certificates", got, len(cert.Certificate))
	}
	// The stored credential is a proxy of Alice's that authenticates as her.
	id, err := f.cas.Verify(leafChain(t, cert), f.clk.now())
	if err != nil || id.DN != f.alice.DN || id.Proxies != 1 {
		t.Fatalf("delegated credential verifies as %+v, %v", id, err)
	}
	if _, _, err := f.store.Credential("bob"); !errors.Is(err, ErrNoCredential) || !strings.Contains(err.Error(), "run dynamo delegate") {
		t.Errorf("bob has none: %v", err)
	}
	// Past its lifetime: the sweeper removes the key, the record explains.
	f.clk.add(31 * time.Minute)
	if _, _, err := f.store.Credential("alice"); !errors.Is(err, ErrNoCredential) ||
		!strings.Contains(err.Error(), "delegated credential for "+f.alice.DN+" expired at "+info.Expires.Format(time.RFC3339)+"; run dynamo delegate") {
		t.Fatalf("expired: %v", err)
	}
	if n, err := f.store.Sweep(); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, info.ID+".pem")); !os.IsNotExist(err) {
		t.Errorf("expired key still on disk: %v", err)
	}
	if _, err := f.store.Get(info.ID, f.alice.DN); err != nil {
		t.Errorf("the record stays to explain: %v", err)
	}
	// A new delegation replaces it.
	if _, err := f.delegate(t, f.alice.DN, "alice", f.aliceCred, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.Credential("alice"); err != nil {
		t.Fatal(err)
	}
}

func leafChain(t *testing.T, c tls.Certificate) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, der := range c.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

func TestDelegationRefusals(t *testing.T) {
	f := setup(t, time.Hour)
	aliceID := ID(f.alice.DN)
	// A proxy that Bob signed for Alice's pending key: it chains to Bob.
	csr, err := f.store.Request(aliceID, f.alice.DN)
	if err != nil {
		t.Fatal(err)
	}
	bobChain, _, err := SignRequest(csr, f.bobCred, 10*time.Minute, f.clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Put(aliceID, f.alice.DN, "alice", bobChain, f.cas); !errors.Is(err, ErrBadProxy) ||
		!strings.Contains(err.Error(), "chains to "+f.bob.DN+", not to you") {
		t.Errorf("bob's proxy for alice: %v", err)
	}
	// Bob cannot ask for, complete, read or delete Alice's delegation.
	if _, err := f.store.Request(aliceID, f.bob.DN); !errors.Is(err, ErrForbidden) {
		t.Errorf("bob requests alice's id: %v", err)
	}
	if _, err := f.store.Put(aliceID, f.bob.DN, "bob", bobChain, f.cas); !errors.Is(err, ErrForbidden) {
		t.Errorf("bob uploads to alice's id: %v", err)
	}
	if _, err := f.delegate(t, f.alice.DN, "alice", f.aliceCred, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Get(aliceID, f.bob.DN); !errors.Is(err, ErrForbidden) {
		t.Errorf("bob reads alice's: %v", err)
	}
	if err := f.store.Delete(aliceID, f.bob.DN); !errors.Is(err, ErrForbidden) {
		t.Errorf("bob deletes alice's: %v", err)
	}
	if _, _, err := f.store.Credential("bob"); !errors.Is(err, ErrNoCredential) {
		t.Errorf("bob uses alice's: %v", err)
	}
	// No certificate, no delegation.
	if _, err := f.store.Request(aliceID, ""); !errors.Is(err, ErrForbidden) {
		t.Errorf("tokens cannot delegate: %v", err)
	}
	// Longer than the configured maximum.
	csr, _ = f.store.Request(aliceID, f.alice.DN)
	long, _, _ := SignRequest(csr, f.aliceCred, 3*time.Hour, f.clk.now())
	if _, err := f.store.Put(aliceID, f.alice.DN, "alice", long, f.cas); !errors.Is(err, ErrBadProxy) || !strings.Contains(err.Error(), "max_lifetime") {
		t.Errorf("3h proxy with a 1h cap: %v", err)
	}
	// A private key in the upload.
	csr, _ = f.store.Request(aliceID, f.alice.DN)
	good, _, _ := SignRequest(csr, f.aliceCred, 10*time.Minute, f.clk.now())
	key, _ := os.ReadFile(f.alice.Key)
	if _, err := f.store.Put(aliceID, f.alice.DN, "alice", append(good, key...), f.cas); !errors.Is(err, ErrBadProxy) || !strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("upload with a key: %v", err)
	}
	// A proxy for another key (an older CSR of the same id).
	old, _ := f.store.Request(aliceID, f.alice.DN)
	oldChain, _, _ := SignRequest(old, f.aliceCred, 10*time.Minute, f.clk.now())
	if _, err := f.store.Request(aliceID, f.alice.DN); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Put(aliceID, f.alice.DN, "alice", oldChain, f.cas); !errors.Is(err, ErrBadProxy) || !strings.Contains(err.Error(), "pending request") {
		t.Errorf("proxy of a replaced CSR: %v", err)
	}
	// The user's own certificate without a proxy.
	cert, _ := os.ReadFile(f.alice.Cert)
	if _, err := f.store.Put(aliceID, f.alice.DN, "alice", append(cert, cert...), f.cas); !errors.Is(err, ErrBadProxy) {
		t.Errorf("no proxy: %v", err)
	}
	// A pending key older than PendingTTL is gone.
	f.clk.add(PendingTTL + time.Minute)
	if _, err := f.store.Sweep(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Put(aliceID, f.alice.DN, "alice", good, f.cas); !errors.Is(err, ErrNotFound) {
		t.Errorf("stale pending key: %v", err)
	}
}

func TestOpenRefusesSharedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir}, nil); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "0700") {
		t.Fatalf("0755 directory: %v", err)
	}
	// The private default directory goes away with the store.
	s, err := Open(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := s.path
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("private dir: %v %v", st, err)
	}
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("private dir left behind: %v", err)
	}
	if _, err := Open(Config{Dir: t.TempDir(), MaxLifetime: time.Second}, nil); !errors.Is(err, ErrBadConfig) {
		t.Errorf("max_lifetime 1s: %v", err)
	}
}
