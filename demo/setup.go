package demo

import (
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/adler32"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/internal/pki"
	"github.com/dynamo-go/dynamo/inventory"
)

// The demo federation: three sites with real storage under one directory.
const (
	DiskSite  = "T1_DEMO_Disk" // embedded SE, disk area: where the experiment writes
	TapeSite  = "T1_DEMO_MSS"  // embedded SE, nearline (tape-emulating) area: the archive copies
	FileSite  = "T2_DEMO_File" // plain file:// storage: the Dealer's destination, Detox's victim
	demoGroup = "AnalysisOps"
	// initialQuota is the file site's quota before step 3 shrinks it:
	// roomy enough for the Dealer to place everything there.
	initialQuota = 100_000_000
)

// High and Low are the watermarks of the demo's Detox policy.
const (
	High = 0.9
	Low  = 0.7
)

// demoPolicy is the Detox policy of step 3 (Dynamo's policy language,
// docs/policy-language.md). The first dataset is protected: the project of
// step 4 reads it.
func demoPolicy(protected string) string {
	return fmt.Sprintf(`# The demo's deletion policy for the file:// site.
Partition Default
On site.name == %s
When site.occupancy > %g
Until site.occupancy < %g
Protect dataset.name == %s
Dismiss
Order decreasing replica.size
`, FileSite, High, Low, protected)
}

// layout is everything the demo generates under its directory.
type layout struct {
	Dir     string
	PKI     *pki.PKI
	Config  string // the one YAML configuration
	DSN     string
	LogFile string
	Policy  string
	Roots   map[string]string // site -> directory holding the site's files (LFN paths below it)
	API     string            // registry listen address
	// OperatorToken is the file holding the bearer token of the demo's
	// operator user (signs in to the console, acts through the API).
	OperatorToken string
	SRMPorts      map[string]int // site -> SRM port of its embedded SE
	Datasets      []demoDataset
}

type demoDataset struct {
	Name   string
	Blocks []demoBlock
}

type demoBlock struct {
	Name  string
	Files []demoFile
}

// demoFile is one file of the experiment: its inventory record (LFN,
// size, adler32) and the seed its bytes are drawn from.
type demoFile struct {
	inventory.File
	seed uint64
}

func (d demoDataset) size() int64 {
	var n int64
	for _, b := range d.Blocks {
		for _, f := range b.Files {
			n += f.Size
		}
	}
	return n
}

// freePorts reserves n distinct loopback ports by listening on them at
// once, then frees them for the servers to take. They are drawn below the
// kernel's ephemeral range (32768-60999): a port the kernel hands out for
// ":0" may be taken as the source port of any outgoing connection between
// our release and the server's bind, which a busy machine does often.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries == 200 {
			return nil, fmt.Errorf("no free loopback port in 20000-31999")
		}
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, port)
	}
	return ports, nil
}

// prepare creates the PKI, the site roots, the experiment's files and
// the configuration under dir, which must be empty or absent.
func prepare(dir, listen string, rng *rand.Rand) (*layout, error) {
	if listen != "" {
		if _, port, err := net.SplitHostPort(listen); err != nil || port == "0" || port == "" {
			return nil, fmt.Errorf("--listen %q: want HOST:PORT with a fixed port", listen)
		}
		// Checked first: a busy port should not cost a PKI and a federation.
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return nil, fmt.Errorf("--listen %s: cannot serve the REST API there: %w", listen, err)
		}
		ln.Close()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("demo directory: %w", err)
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return nil, fmt.Errorf("demo directory: %w", err)
	} else if len(ents) > 0 {
		return nil, fmt.Errorf("demo directory %s is not empty: give an empty or new one", dir)
	}
	probe := filepath.Join(dir, ".write-test")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		return nil, fmt.Errorf("demo directory %s is not writable: %w", dir, err)
	}
	os.Remove(probe)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	l := &layout{Dir: abs, DSN: "sqlite:" + filepath.Join(abs, "dynamo.db"), LogFile: filepath.Join(abs, "dynamo.log"),
		Config: filepath.Join(abs, "dynamo.yaml"), Policy: filepath.Join(abs, "detox-policy.txt"),
		OperatorToken: filepath.Join(abs, "operator.token"), Roots: map[string]string{}, SRMPorts: map[string]int{}}
	if err := os.MkdirAll(filepath.Join(abs, "pki"), 0o755); err != nil {
		return nil, err
	}
	if l.PKI, err = pki.Generate(filepath.Join(abs, "pki")); err != nil {
		return nil, fmt.Errorf("demo PKI: %w", err)
	}
	for _, s := range []string{DiskSite, TapeSite, FileSite} {
		l.Roots[s] = filepath.Join(abs, "sites", s)
		if err := os.MkdirAll(l.Roots[s], 0o755); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	l.API = fmt.Sprintf("127.0.0.1:%d", ports[0])
	if listen != "" {
		l.API = listen
	}
	l.SRMPorts[DiskSite], l.SRMPorts[TapeSite] = ports[1], ports[3]

	l.Datasets = experiment(rng)
	// A fresh random token per demo: the demo's API listens on a port other
	// local users can reach.
	tok := make([]byte, 24)
	if _, err := crand.Read(tok); err != nil {
		return nil, err
	}
	if err := os.WriteFile(l.OperatorToken, []byte(hex.EncodeToString(tok)+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(l.Policy, []byte(demoPolicy(l.Datasets[0].Name)), 0o644); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(l.Roots[TapeSite]+".tape", 0o755); err != nil {
		return nil, err
	}
	// The experiment wrote its files at the disk SE.
	for _, ds := range l.Datasets {
		for _, b := range ds.Blocks {
			for _, f := range b.Files {
				p := filepath.Join(l.Roots[DiskSite], filepath.FromSlash(f.LFN))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return nil, err
				}
				if err := os.WriteFile(p, f.content(), 0o644); err != nil {
					return nil, err
				}
			}
		}
	}
	cfg := fmt.Sprintf(`# Generated by dynamo demo: the whole system in one file (docs/configuration.md).
database: %[1]q
log: {level: info, format: text}
serve: {shutdown_grace: 10s}
registry:
  listen: %[2]q
  inject_interval: "0"
  users: [{name: demo-operator, roles: {"*": admin}}]  # the demo injects and acts as the administrator
  tokens: [{user: demo-operator, token_file: %[17]q}]
storage_elements:
  - name: %[3]s
    listen: 127.0.0.1:%[4]d
    data_listen: 127.0.0.1:%[5]d
    cert: %[6]q
    key: %[7]q
    ca_dir: %[8]q
    engine: {pick_interval: 20ms}
    storage_areas:
      - name: disk
        prefix: /
        root: %[9]q
        allow: [{dn: "*"}]
  - name: %[10]s
    listen: 127.0.0.1:%[11]d
    data_listen: 127.0.0.1:%[12]d
    cert: %[6]q
    key: %[7]q
    ca_dir: %[8]q
    engine: {pick_interval: 20ms}
    storage_areas:
      - name: tape
        prefix: /
        root: %[13]q
        retention_policy: CUSTODIAL
        access_latency: NEARLINE
        driver: nearline
        nearline: {tape_dir: %[16]q, recall_delay: 1s}
        allow: [{dn: "*"}]
fileop:
  interval: 200ms
  driver: {proxy: %[14]q, ca_cert_dir: %[8]q}
  native: {workers: 4}
dealer:
  max_pending_fraction: 0.5  # let one cycle place the whole (tiny) request
  plugins:
    enforcer: {enabled: false}
    popularity: {enabled: false}
    balancer: {enabled: false}
    undertaker: {enabled: false}
detox:
  partitions:
    Default: {policy: %[15]q}
projects:
  lookahead: 4
  retry_after: 1s
  tick: 100ms
  credential: {cert: %[14]q, ca_dir: %[8]q}
  stager: {backoff_start: 50ms, backoff_cap: 500ms, tick: 50ms}
`, l.DSN, l.API, DiskSite, ports[1], ports[2], l.PKI.HostCert, l.PKI.HostKey, l.PKI.CertDir, l.Roots[DiskSite],
		TapeSite, ports[3], ports[4], l.Roots[TapeSite], l.PKI.UserCred, l.Policy, l.Roots[TapeSite]+".tape", l.OperatorToken)
	if err := os.WriteFile(l.Config, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return l, nil
}

// experiment draws the experiment: 3 datasets x 2 blocks x 4 files of
// 64-256 KiB. Sizes are drawn until the largest dataset Detox may delete
// holds enough of the file site's bytes for one deletion to bring the site
// from 95% to under the low watermark, so every run tells the same story.
func experiment(rng *rand.Rand) []demoDataset {
	names := []string{"/DemoPhysics/Run2026A-v1/AOD", "/DemoPhysics/Run2026B-v1/AOD", "/DemoCosmics/Run2026A-v1/RAW"}
	for {
		var out []demoDataset
		var total int64
		for di, name := range names {
			ds := demoDataset{Name: name}
			parts := strings.Split(strings.Trim(name, "/"), "/")
			for bi := range 2 {
				b := demoBlock{Name: fmt.Sprintf("%08x-%04x-4000-8000-%012x", rng.Uint32(), di*16+bi, rng.Uint64()&0xffffffffffff)}
				for fi := range 4 {
					lfn := fmt.Sprintf("/store/demo/%s/%s/%s/%d/file%d.root", parts[0], parts[2], parts[1], bi, fi)
					size := int64(64<<10 + rng.IntN(192<<10+1))
					seed := rng.Uint64()
					b.Files = append(b.Files, demoFile{File: inventory.File{LFN: lfn, Size: size}, seed: seed})
				}
				ds.Blocks = append(ds.Blocks, b)
			}
			total += ds.size()
			out = append(out, ds)
		}
		maxDeletable := max(out[1].size(), out[2].size())
		if 0.95*float64(total-maxDeletable)/float64(total) < Low-0.02 {
			for i := range out {
				for j := range out[i].Blocks {
					for k := range out[i].Blocks[j].Files {
						f := &out[i].Blocks[j].Files[k]
						f.Adler32 = fmt.Sprintf("%08x", adler32.Checksum(f.content()))
					}
				}
			}
			return out
		}
	}
}

// content is the file's bytes: pseudo-random from its seed.
func (f demoFile) content() []byte {
	r := rand.New(rand.NewPCG(f.seed, uint64(f.Size)))
	b := make([]byte, f.Size)
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// injectJSON is the experiment as an injection document
// (docs/inventory.md#injection): the three sites with their storage URLs
// and quotas, the datasets with every file and checksum, and their copies
// at the disk SE where the experiment wrote them.
func (l *layout) injectJSON() ([]byte, error) {
	type file struct {
		LFN     string `json:"lfn"`
		Size    int64  `json:"size"`
		Adler32 string `json:"adler32"`
	}
	type block struct {
		Name  string `json:"name"`
		Files []file `json:"files"`
	}
	type dataset struct {
		Name     string  `json:"name"`
		Status   string  `json:"status"`
		DataType string  `json:"data_type"`
		Blocks   []block `json:"blocks"`
	}
	doc := map[string]any{
		"sites":  []map[string]any{l.siteDoc(DiskSite, 1_000_000_000), l.siteDoc(TapeSite, 1_000_000_000), l.siteDoc(FileSite, initialQuota)},
		"groups": []map[string]any{{"name": demoGroup, "olevel": "dataset"}, {"name": "DataOps", "olevel": "block"}},
	}
	var dss []dataset
	var reps []map[string]any
	for _, ds := range l.Datasets {
		d := dataset{Name: ds.Name, Status: "valid", DataType: "data"}
		for _, b := range ds.Blocks {
			bb := block{Name: b.Name}
			for _, f := range b.Files {
				bb.Files = append(bb.Files, file{f.LFN, f.Size, f.Adler32})
			}
			d.Blocks = append(d.Blocks, bb)
		}
		dss = append(dss, d)
		reps = append(reps, map[string]any{"dataset": ds.Name, "site": DiskSite, "group": "DataOps"})
	}
	doc["datasets"], doc["dataset_replicas"] = dss, reps
	return json.Marshal(doc)
}

// siteDoc is a site of the federation as an injection document declares
// it, with its Default partition quota.
func (l *layout) siteDoc(name string, quota int64) map[string]any {
	site := map[string]any{"name": name, "host": "localhost", "storage_type": "disk", "status": "ready",
		"quotas": map[string]int64{"Default": quota}}
	switch name {
	case DiskSite:
		site["backend"] = fmt.Sprintf("srm://localhost:%d", l.SRMPorts[DiskSite])
	case TapeSite:
		site["storage_type"] = "mss"
		site["backend"] = fmt.Sprintf("srm://localhost:%d", l.SRMPorts[TapeSite])
	default:
		site["backend"] = "file://" + l.Roots[FileSite]
	}
	return site
}

// ExperimentSizes are the bytes of each dataset of the experiment the
// demo draws with seed, in the order the demo injects them.
func ExperimentSizes(seed uint64) []int64 {
	var out []int64
	for _, ds := range experiment(rand.New(rand.NewPCG(seed, seed^0x5eed))) {
		out = append(out, ds.size())
	}
	return out
}

// Deadline bounds each wait of the demo: the whole run is meant to
// take well under a minute, so a step that takes this long is stuck.
const Deadline = 40 * time.Second
