package delegation

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// keyBits is the size of the RSA keys the server makes: RSA is what every
// grid client and SE accepts in a proxy.
const keyBits = 2048

// Store keeps delegated credentials in a directory (see the package doc).
// It is safe for concurrent use within a process; processes sharing the
// directory see each other's files (every write is an atomic rename).
type Store struct {
	cfg     Config
	dir     *os.Root // every file access stays inside the directory
	path    string
	private bool // a temporary directory of ours, removed by Close
	now     func() time.Time
	mu      sync.Mutex // orders writes of this process
}

// idPattern is what ID returns; anything else is never a file name.
var idPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// Open opens (creating it 0700) the directory of cfg, refusing one that
// other users could read, and removes what expired (credentials past
// their lifetime, stale pending keys, leftovers of interrupted writes).
// now is the clock (nil: time.Now).
func Open(cfg Config, now func() time.Time) (*Store, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	s := &Store{cfg: cfg, now: now, path: cfg.Dir}
	if s.path == "" {
		d, err := os.MkdirTemp("", "dynamo-delegations-")
		if err != nil {
			return nil, fmt.Errorf("delegation: private directory: %w", err)
		}
		s.path, s.private = d, true
	} else if err := os.Mkdir(s.path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("delegation.dir: %w", err)
	}
	if err := checkPrivateDir(s.path); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(s.path)
	if err != nil {
		return nil, fmt.Errorf("delegation.dir: %w", err)
	}
	s.dir = r
	if _, err := s.Sweep(); err != nil {
		r.Close()
		return nil, err
	}
	return s, nil
}

// checkPrivateDir refuses a directory (or symlink) that is not ours alone.
func checkPrivateDir(path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("delegation.dir: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: delegation.dir %s is not a directory", ErrBadConfig, path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: delegation.dir %s has mode %v; it holds private keys and must be 0700", ErrBadConfig, path, st.Mode().Perm())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		return fmt.Errorf("%w: delegation.dir %s belongs to uid %d, not to this process's uid %d", ErrBadConfig, path, sys.Uid, os.Getuid())
	}
	return nil
}

// Close releases the directory; a private temporary one is removed with
// everything in it.
func (s *Store) Close() error {
	err := s.dir.Close()
	if s.private {
		if e := os.RemoveAll(s.path); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// Config returns the effective configuration.
func (s *Store) Config() Config { return s.cfg }

// Request starts the delegation id of dn (the caller's verified DN; id
// must be ID(dn)): a new key pair, whose private half is kept as the pending request of the dn's id,
// and a PEM certificate signing request for its public half. Asking again
// replaces the pending key (an earlier CSR becomes useless).
func (s *Store) Request(id, dn string) ([]byte, error) {
	if err := owns(id, dn); err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("delegation: key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("delegation: key: %w", err)
	}
	// The subject is a placeholder: the signer makes the proxy subject
	// from its own (RFC 3820), whatever the request says.
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "proxy"}}, key)
	if err != nil {
		return nil, fmt.Errorf("delegation: CSR: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepPending()
	if err := s.write(id+".req", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), nil
}

// owns refuses an id that is not dn's.
func owns(id, dn string) error {
	if dn == "" {
		return fmt.Errorf("%w: delegating needs a client certificate or proxy (a token names no identity to delegate)", ErrForbidden)
	}
	if want := ID(dn); id != want {
		return fmt.Errorf("%w: delegation %s belongs to another identity; yours is %s", ErrForbidden, id, want)
	}
	return nil
}

// Put completes the pending delegation id of dn with the proxy chain the
// user signed (PEM certificates, the new proxy first), after Verify
// accepted it. user is recorded as the owner name of the delegator's
// requests. It returns what was stored.
func (s *Store) Put(id, dn, user string, chainPEM []byte, v Verifier) (Info, error) {
	if err := owns(id, dn); err != nil {
		return Info{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keyPEM, err := s.read(id + ".req")
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("%w: no pending request for delegation %s (it expires after %v); GET its request first", ErrNotFound, id, PendingTTL)
	}
	if err != nil {
		return Info{}, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return Info{}, err
	}
	now := s.now()
	chain, err := verifyChain(chainPEM, key, dn, v, now, s.cfg.MaxLifetime)
	if err != nil {
		return Info{}, err
	}
	var cred []byte
	for _, c := range chain {
		cred = append(cred, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	cred = append(cred, keyPEM...)
	info := Info{ID: id, DN: dn, User: user, Created: now.UTC(), Expires: chain[0].NotAfter.UTC()}
	meta, _ := json.Marshal(info) // plain struct
	// The credential before its record: a record always finds its key
	// (until the sweeper removes both in the other order).
	if err := s.write(id+".pem", cred); err != nil {
		return Info{}, err
	}
	if err := s.write(id+".json", meta); err != nil {
		return Info{}, err
	}
	if err := s.dir.Remove(id + ".req"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("delegation: removing the pending key: %w", err)
	}
	return info, nil
}

// Get returns the delegation id of dn (expired ones too, until Retention).
func (s *Store) Get(id, dn string) (Info, error) {
	if err := owns(id, dn); err != nil {
		return Info{}, err
	}
	info, err := s.info(id)
	if err != nil {
		return Info{}, err
	}
	if info.Expired(s.now()) {
		if _, err := s.dir.Stat(id + ".pem"); err == nil {
			s.mu.Lock()
			s.sweepOne(info, s.now())
			s.mu.Unlock()
		}
	}
	return info, nil
}

// Delete removes the delegation id of dn (key and record) and any pending
// request; removing nothing is not an error.
func (s *Store) Delete(id, dn string) error {
	if err := owns(id, dn); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range []string{id + ".pem", id + ".json", id + ".req"} {
		if err := s.dir.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delegation: removing %s: %w", f, err)
		}
	}
	return nil
}

// Credential returns the delegated credential of the user named user (the
// owner name of their requests) that lives longest, or an error wrapping
// ErrNoCredential that says what is missing and what to do.
func (s *Store) Credential(user string) (tls.Certificate, Info, error) {
	info, err := s.Lookup(user)
	if err != nil {
		return tls.Certificate{}, info, err
	}
	cert, err := s.Load(info)
	return cert, info, err
}

// Lookup returns the record of the user's delegation that lives longest,
// if it is still valid; otherwise an error wrapping ErrNoCredential says
// what is missing (none, or expired when) and what to do.
func (s *Store) Lookup(user string) (Info, error) {
	infos, err := s.list()
	if err != nil {
		return Info{}, err
	}
	var best *Info
	for i := range infos {
		if infos[i].User == user && (best == nil || infos[i].Expires.After(best.Expires)) {
			best = &infos[i]
		}
	}
	switch {
	case best == nil:
		return Info{}, fmt.Errorf("%w: user %s has delegated no credential; run dynamo delegate", ErrNoCredential, user)
	case best.Expired(s.now()):
		return *best, fmt.Errorf("%w: delegated credential for %s expired at %s; run dynamo delegate",
			ErrNoCredential, best.DN, best.Expires.UTC().Format(time.RFC3339))
	}
	return *best, nil
}

// Load reads the key and chain of a delegation Lookup returned.
func (s *Store) Load(info Info) (tls.Certificate, error) {
	b, err := s.read(info.ID + ".pem")
	if errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("%w: delegated credential for %s was removed; run dynamo delegate", ErrNoCredential, info.DN)
	}
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(b, b)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("delegation: credential %s is unreadable: %w", info.ID, err)
	}
	return cert, nil
}

// Sweep removes expired credentials (their keys at once, their records
// after Retention), pending keys older than PendingTTL and leftovers of
// interrupted writes. It returns how many credentials it removed.
func (s *Store) Sweep() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	infos, err := s.list()
	if err != nil {
		return 0, err
	}
	now := s.now()
	n := 0
	for _, info := range infos {
		if s.sweepOne(info, now) {
			n++
		}
	}
	ents, err := fs.ReadDir(s.dir.FS(), ".")
	if err != nil {
		return n, fmt.Errorf("delegation: reading the directory: %w", err)
	}
	known := map[string]bool{}
	for _, i := range infos {
		known[i.ID] = true
	}
	for _, e := range ents {
		name := e.Name()
		id, ext, _ := strings.Cut(name, ".")
		switch {
		case strings.HasPrefix(name, ".tmp-"):
			_ = s.dir.Remove(name)
		case ext == "pem" && !known[id]:
			// A key without a record: a Put interrupted between its writes.
			_ = s.dir.Remove(name)
			n++
		}
	}
	s.sweepPending()
	return n, nil
}

// sweepOne removes the key of an expired delegation, and its record after
// Retention; it reports whether a key went (s.mu held).
func (s *Store) sweepOne(info Info, now time.Time) bool {
	if !info.Expired(now) {
		return false
	}
	removed := false
	if err := s.dir.Remove(info.ID + ".pem"); err == nil {
		removed = true
	}
	if now.Sub(info.Expires) > Retention {
		_ = s.dir.Remove(info.ID + ".json")
	}
	return removed
}

// sweepPending removes pending keys older than PendingTTL (s.mu held).
func (s *Store) sweepPending() {
	ents, err := fs.ReadDir(s.dir.FS(), ".")
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".req") {
			continue
		}
		if fi, err := e.Info(); err == nil && s.now().Sub(fi.ModTime()) > PendingTTL {
			_ = s.dir.Remove(e.Name())
		}
	}
}

func (s *Store) list() ([]Info, error) {
	ents, err := fs.ReadDir(s.dir.FS(), ".")
	if err != nil {
		return nil, fmt.Errorf("delegation: reading the directory: %w", err)
	}
	var out []Info
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !idPattern.MatchString(id) {
			continue
		}
		info, err := s.info(id)
		if err != nil {
			continue // removed meanwhile, or being replaced
		}
		out = append(out, info)
	}
	return out, nil
}

func (s *Store) info(id string) (Info, error) {
	if !idPattern.MatchString(id) {
		return Info{}, fmt.Errorf("%w: %q is not a delegation id", ErrNotFound, id)
	}
	b, err := s.read(id + ".json")
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("%w: no delegation %s", ErrNotFound, id)
	}
	if err != nil {
		return Info{}, err
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return Info{}, fmt.Errorf("delegation: record %s is unreadable: %w", id, err)
	}
	return info, nil
}

func (s *Store) read(name string) ([]byte, error) {
	f, err := s.dir.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > 1<<20 {
		return nil, fmt.Errorf("delegation: %s is too large", name)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("delegation: reading %s: %w", name, err)
	}
	return b, nil
}

// write replaces name with data, mode 0600: temporary file, fsync,
// rename, so that a reader never sees half a key.
func (s *Store) write(name string, data []byte) error {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := fmt.Sprintf(".tmp-%x-%s", rnd, name)
	f, err := s.dir.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("delegation: writing %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.dir.Rename(tmp, name)
	}
	if err != nil {
		_ = s.dir.Remove(tmp)
		return fmt.Errorf("delegation: writing %s: %w", name, err)
	}
	return nil
}

func parseKey(b []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("delegation: pending key is unreadable")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("delegation: pending key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("delegation: pending key is not RSA")
	}
	return rk, nil
}
