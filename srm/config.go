package srm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/internal/yamlconf"
	"github.com/dynamo-go/dynamo/srm/fs/nearline"
)

// Operation names used in authorization rules.
const (
	OpRead   = "read"   // srmPrepareToGet, srmBringOnline, HTTP GET/HEAD
	OpWrite  = "write"  // srmPrepareToPut, srmMkdir, srmSetPermission, srmMv target, HTTP PUT
	OpList   = "list"   // srmLs, srmGet/CheckPermission
	OpDelete = "delete" // srmRm, srmRmdir, srmMv source
)

var allOps = []string{OpRead, OpWrite, OpList, OpDelete}

// Config is the storage element configuration (YAML, decoded strictly by
// LoadConfig). Zero values are replaced by defaults in ApplyDefaults.
type Config struct {
	// Listen is the SRM (httpg) endpoint address; default ":8444".
	Listen string `yaml:"listen"`
	// DataListen is the HTTPS data (TURL) endpoint address; default ":8443".
	// It must differ from Listen: the SRM port speaks GSI-flavoured TLS.
	DataListen string `yaml:"data_listen"`
	// Hostname is the host name put in TURLs; default "localhost".
	Hostname string `yaml:"hostname"`
	// Cert and Key are the PEM host certificate and key.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// CADir is the grid CA directory (X509_CERT_DIR layout).
	CADir string `yaml:"ca_dir"`
	// VOMSDir is the vomsdir (/etc/grid-security/vomsdir layout: <vo>/*.lsc
	// or VOMS server certificates) that VOMS attribute certificates are
	// verified against. An AC that does not verify is ignored (the DN still
	// authenticates). Empty: no AC is believed, so group rules match nobody.
	VOMSDir string `yaml:"voms_dir"`
	// DB is the request database DSN (sqlite:PATH or mysql://...). Empty:
	// the caller (dynamo srm) picks one, see docs/srm.md.
	DB string `yaml:"db"`
	// MaxBodyBytes bounds a SOAP request body; default 4 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxLsEntries bounds the entries one srmLs returns before it answers
	// SRM_TOO_MANY_RESULTS (clients page with offset/count); default 2000.
	MaxLsEntries int `yaml:"max_ls_entries"`
	// MaxConnections bounds open client connections per endpoint; default
	// 1000. Further clients wait in the listen backlog.
	MaxConnections int `yaml:"max_connections"`
	// CAReloadInterval is how often CADir is re-read; default 1h.
	CAReloadInterval time.Duration `yaml:"ca_reload_interval"`
	// Areas are the storage areas; the longest matching prefix wins.
	Areas []AreaConfig `yaml:"storage_areas"`
	// Engine bounds the asynchronous request engine.
	Engine EngineConfig `yaml:"engine"`
	// SiteName names the SE in the Tape REST discovery document and the
	// storage resource report; default Hostname.
	SiteName string `yaml:"site_name"`
	// Tokens configures bearer-token (WLCG JWT) authentication.
	Tokens TokensConfig `yaml:"tokens"`
	// Macaroons configures SE-minted macaroons.
	Macaroons MacaroonConfig `yaml:"macaroons"`
	// TPC bounds HTTP third-party copies.
	TPC TPCConfig `yaml:"tpc"`
}

// AreaConfig describes one storage area: a SURL prefix mapped to a physical
// root with its own policy.
type AreaConfig struct {
	Name string `yaml:"name"`
	// Prefix is the SURL path prefix ("/dteam"); "/" maps every path.
	Prefix string `yaml:"prefix"`
	// Root is the physical directory; it must exist.
	Root string `yaml:"root"`
	// SpaceToken is the area's static space token (srmGetSpaceTokens).
	SpaceToken string `yaml:"space_token"`
	// RetentionPolicy: REPLICA (default), OUTPUT or CUSTODIAL.
	RetentionPolicy string `yaml:"retention_policy"`
	// AccessLatency: ONLINE (default) or NEARLINE (needs driver "nearline").
	AccessLatency string `yaml:"access_latency"`
	// OnlineSizeLimit in bytes; 0 means unlimited. Puts that would exceed it
	// get SRM_NO_FREE_SPACE.
	OnlineSizeLimit int64 `yaml:"online_size_limit"`
	// DefaultPutSize is what an srmPrepareToPut without expectedFileSize
	// reserves (bytes); its upload may not write more. 0: such uploads
	// reserve their Content-Length when the data arrives.
	DefaultPutSize int64 `yaml:"default_put_size"`
	// Protocols are the TURL schemes offered: "https", "file"; default https.
	Protocols []string `yaml:"protocols"`
	// Driver is "posix" (default) or "nearline" (tape emulation).
	Driver string `yaml:"driver"`
	// Nearline configures the tape emulation when Driver is "nearline".
	Nearline NearlineConfig `yaml:"nearline"`
	// Allow lists the admission rules; a client may do an operation when any
	// rule matches it. Empty means nobody.
	Allow []Rule `yaml:"allow"`
	// AnonymousRead lets clients without any credential read and list the
	// area over HTTPS.
	AnonymousRead bool `yaml:"anonymous_read"`
}

// NearlineConfig configures the tape-emulating driver.
type NearlineConfig struct {
	// TapeDir holds migrated copies; default <root>/../<name>.tape.
	TapeDir string `yaml:"tape_dir"`
	// RecallDelay is how long a recall takes; default 2s.
	RecallDelay time.Duration `yaml:"recall_delay"`
}

// Rule admits clients to operations in a storage area.
type Rule struct {
	// DN is a path.Match glob on the client DN in slash form; "*" or empty
	// matches everyone (note "*" in path.Match does not cross "/", so use
	// "/DC=org/DC=example/*" only for single-RDN suffixes; "" or "*" = any).
	DN string `yaml:"dn"`
	// Group is a VOMS group ("/dteam"); empty means no VOMS requirement.
	Group string `yaml:"group"`
	// Ops is a subset of read, write, list, delete; empty means all.
	Ops []string `yaml:"ops"`
	// Issuer makes the rule match bearer tokens of that tokens.issuers
	// name ("*": any configured issuer) instead of certificates. With
	// Group the token's wlcg.groups must hold it; without, the token's
	// storage.* scopes must grant the operation (see docs/srm.md).
	Issuer string `yaml:"issuer"`
}

// EngineConfig bounds the asynchronous request engine (StoRM's picker,
// scheduler and worker pools).
type EngineConfig struct {
	// PickInterval is the picker period; default 100ms.
	PickInterval time.Duration `yaml:"pick_interval"`
	// PickBatch bounds the requests one pick takes; default 200.
	PickBatch int `yaml:"pick_batch"`
	// Workers per request type; default 8 each.
	GetWorkers int `yaml:"get_workers"`
	PutWorkers int `yaml:"put_workers"`
	BoLWorkers int `yaml:"bol_workers"`
	// QueueSize bounds picked requests waiting for a worker, per type;
	// default 1000.
	QueueSize int `yaml:"queue_size"`
	// MaxQueued bounds requests accepted but not yet picked; beyond it new
	// requests get SRM_INTERNAL_ERROR (retryable). Default 20000.
	MaxQueued int `yaml:"max_queued"`
	// MaxFilesPerRequest bounds the SURLs of one request; default 1000.
	MaxFilesPerRequest int `yaml:"max_files_per_request"`
	// DefaultPinLifetime / MaxPinLifetime for PtG and BoL; default 1h / 7d.
	DefaultPinLifetime time.Duration `yaml:"default_pin_lifetime"`
	MaxPinLifetime     time.Duration `yaml:"max_pin_lifetime"`
	// PutLifetime is how long a SPACE_AVAILABLE put waits for PutDone;
	// default 4h.
	PutLifetime time.Duration `yaml:"put_lifetime"`
	// AgentInterval is the period of the expiry and GC agents; default 30s.
	AgentInterval time.Duration `yaml:"agent_interval"`
	// RequestRetention is how long finished requests stay queryable;
	// default 24h.
	RequestRetention time.Duration `yaml:"request_retention"`
	// ImmediateMaxFiles: gets, puts and bring-onlines of at most this many
	// files are processed in the call itself and answered with their final
	// state (no polling); larger ones are queued. 0 (default) queues all;
	// -1 also queues all (explicit).
	ImmediateMaxFiles int `yaml:"immediate_max_files"`
}

// ApplyDefaults fills zero fields with defaults.
func (c *Config) ApplyDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.Listen, ":8444")
	def(&c.DataListen, ":8443")
	def(&c.Hostname, "localhost")
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 4 << 20
	}
	if c.MaxLsEntries == 0 {
		c.MaxLsEntries = 2000
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 1000
	}
	if c.CAReloadInterval == 0 {
		c.CAReloadInterval = time.Hour
	}
	for i := range c.Areas {
		a := &c.Areas[i]
		def(&a.RetentionPolicy, "REPLICA")
		def(&a.AccessLatency, "ONLINE")
		def(&a.Driver, "posix")
		if len(a.Protocols) == 0 {
			a.Protocols = []string{"https"}
		}
		a.RetentionPolicy = strings.ToUpper(a.RetentionPolicy)
		a.AccessLatency = strings.ToUpper(a.AccessLatency)
		if a.Driver == "nearline" {
			if a.Nearline.TapeDir == "" && a.Root != "" {
				a.Nearline.TapeDir = filepath.Join(filepath.Dir(filepath.Clean(a.Root)), a.Name+".tape")
			}
			if a.Nearline.RecallDelay == 0 {
				a.Nearline.RecallDelay = 2 * time.Second
			}
		}
	}
	e := &c.Engine
	defD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	defI := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defD(&e.PickInterval, 100*time.Millisecond)
	defI(&e.PickBatch, 200)
	defI(&e.GetWorkers, 8)
	defI(&e.PutWorkers, 8)
	defI(&e.BoLWorkers, 8)
	defI(&e.QueueSize, 1000)
	defI(&e.MaxQueued, 20000)
	defI(&e.MaxFilesPerRequest, 1000)
	defD(&e.DefaultPinLifetime, time.Hour)
	defD(&e.MaxPinLifetime, 7*24*time.Hour)
	defD(&e.PutLifetime, 4*time.Hour)
	defD(&e.AgentInterval, 30*time.Second)
	defD(&e.RequestRetention, 24*time.Hour)
	c.applyHTTPDefaults()
}

// Validate checks the configuration after ApplyDefaults; the error names
// every problem found.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Cert == "" || c.Key == "" {
		bad("cert and key: the host certificate and key are required")
	}
	if c.CADir == "" {
		bad("ca_dir: the grid CA directory is required")
	}
	if c.Listen == c.DataListen && !strings.HasSuffix(c.Listen, ":0") {
		bad("listen and data_listen must differ (%q)", c.Listen)
	}
	if c.MaxBodyBytes < 4096 {
		bad("max_body_bytes %d: at least 4096", c.MaxBodyBytes)
	}
	if c.MaxLsEntries < 1 {
		bad("max_ls_entries %d: at least 1", c.MaxLsEntries)
	}
	if c.MaxConnections < 1 {
		bad("max_connections %d: at least 1", c.MaxConnections)
	}
	if c.CAReloadInterval < time.Second {
		bad("ca_reload_interval %s: at least 1s", c.CAReloadInterval)
	}
	if len(c.Areas) == 0 {
		bad("storage_areas: at least one storage area is required")
	}
	names, prefixes, tokens := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, a := range c.Areas {
		where := fmt.Sprintf("storage_areas[%d] (%s)", i, a.Name)
		if a.Name == "" {
			bad("storage_areas[%d]: name is required", i)
		}
		if names[a.Name] {
			bad("%s: duplicate name", where)
		}
		names[a.Name] = true
		if !strings.HasPrefix(a.Prefix, "/") || path.Clean(a.Prefix) != a.Prefix {
			bad("%s: prefix %q must be a clean absolute path like /dteam", where, a.Prefix)
		}
		if prefixes[a.Prefix] {
			bad("%s: duplicate prefix %q", where, a.Prefix)
		}
		prefixes[a.Prefix] = true
		if a.SpaceToken != "" {
			if tokens[a.SpaceToken] {
				bad("%s: duplicate space token %q", where, a.SpaceToken)
			}
			tokens[a.SpaceToken] = true
		}
		if !filepath.IsAbs(a.Root) {
			bad("%s: root %q must be an absolute path", where, a.Root)
		} else if st, err := os.Stat(a.Root); err != nil || !st.IsDir() {
			bad("%s: root %q is not an existing directory", where, a.Root)
		}
		switch a.RetentionPolicy {
		case "REPLICA", "OUTPUT", "CUSTODIAL":
		default:
			bad("%s: retention_policy %q: want REPLICA, OUTPUT or CUSTODIAL", where, a.RetentionPolicy)
		}
		switch a.AccessLatency {
		case "ONLINE":
		case "NEARLINE":
			if a.Driver != "nearline" {
				bad("%s: access_latency NEARLINE needs driver nearline", where)
			}
		default:
			bad("%s: access_latency %q: want ONLINE or NEARLINE", where, a.AccessLatency)
		}
		switch a.Driver {
		case "posix", "nearline":
		default:
			bad("%s: driver %q: want posix or nearline", where, a.Driver)
		}
		if a.Driver == "nearline" {
			if !filepath.IsAbs(a.Nearline.TapeDir) {
				bad("%s: nearline.tape_dir %q must be an absolute path", where, a.Nearline.TapeDir)
			} else {
				// Tape copies reachable through an area would be readable,
				// replaceable and deletable by its clients.
				for _, b := range c.Areas {
					if filepath.IsAbs(b.Root) && errors.Is(nearline.Disjoint(b.Root, a.Nearline.TapeDir), nearline.ErrOverlap) {
						bad("%s: nearline.tape_dir %q and the root of area %s must not contain each other", where, a.Nearline.TapeDir, b.Name)
					}
				}
			}
		}
		if a.OnlineSizeLimit < 0 {
			bad("%s: online_size_limit %d is negative", where, a.OnlineSizeLimit)
		}
		if a.DefaultPutSize < 0 {
			bad("%s: default_put_size %d is negative", where, a.DefaultPutSize)
		}
		for _, p := range a.Protocols {
			if p != "https" && p != "file" {
				bad("%s: protocol %q: want https or file", where, p)
			}
		}
		for j, r := range a.Allow {
			if r.DN != "" && r.DN != "*" {
				if _, err := path.Match(r.DN, ""); err != nil {
					bad("%s: allow[%d]: dn pattern %q: %v", where, j, r.DN, err)
				}
			}
			for _, op := range r.Ops {
				if !contains(allOps, op) {
					bad("%s: allow[%d]: op %q: want one of %s", where, j, op, strings.Join(allOps, ", "))
				}
			}
		}
	}
	e := c.Engine
	for name, v := range map[string]int{"pick_batch": e.PickBatch, "get_workers": e.GetWorkers, "put_workers": e.PutWorkers,
		"bol_workers": e.BoLWorkers, "queue_size": e.QueueSize, "max_queued": e.MaxQueued, "max_files_per_request": e.MaxFilesPerRequest} {
		if v < 1 {
			bad("engine.%s %d: at least 1", name, v)
		}
	}
	if e.PickInterval < time.Millisecond {
		bad("engine.pick_interval %s: at least 1ms", e.PickInterval)
	}
	if e.MaxPinLifetime < e.DefaultPinLifetime {
		bad("engine.max_pin_lifetime %s is below default_pin_lifetime %s", e.MaxPinLifetime, e.DefaultPinLifetime)
	}
	c.validateHTTP(bad)
	return errors.Join(errs...)
}

// DecodeConfig decodes an SE configuration from its node (see yamlconf:
// strict, positions of the file), applies defaults and validates it.
// `dynamo srm serve --config F` reads F with yamlconf.Load(F, DecodeConfig).
func DecodeConfig(n *yaml.Node) (*Config, error) {
	var c Config
	if err := yamlconf.Decode(n, &c); err != nil {
		return nil, fmt.Errorf("srm config: %w", err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("srm config: %w", err)
	}
	return &c, nil
}

// QuickStart returns a validated configuration with one storage area "/"
// at root, open to every client the CA directory trusts, offering https and
// file TURLs.
func QuickStart(root, listen, dataListen, cert, key, caDir string) (*Config, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("srm quick start: root %q: %w", root, err)
	}
	secret, err := quickStartSecret(abs)
	if err != nil {
		return nil, fmt.Errorf("srm quick start: %w", err)
	}
	c := &Config{
		Listen: listen, DataListen: dataListen, Cert: cert, Key: key, CADir: caDir,
		Areas: []AreaConfig{{Name: "root", Prefix: "/", Root: abs, SpaceToken: "DEFAULT",
			Protocols: []string{"https", "file"}, Allow: []Rule{{DN: "*"}}}},
		Macaroons: MacaroonConfig{SecretFile: secret},
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("srm quick start: %w", err)
	}
	return c, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// quickStartSecret returns the macaroon secret file of a quick-start SE,
// creating it (32 random bytes, hex, mode 0600) on first use. It lives next
// to the root, never inside it, like the request database: clients must
// not read it. Third-party copies need macaroons (the SE never lends its
// own identity), so the quick start always has them.
func quickStartSecret(root string) (string, error) {
	file := filepath.Join(filepath.Dir(root), "."+filepath.Base(root)+".dynamo-macaroon.secret")
	if st, err := os.Stat(file); err == nil && st.Size() >= 32 {
		return file, nil
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("macaroon secret: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(b[:]) + "\n")
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return "", fmt.Errorf("macaroon secret: %w", err)
	}
	return file, nil
}
