package srm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// WLCG Storage Resource Reporting, schema v4.2: one share per storage area,
// one endpoint per interface (SRM, WebDAV, Tape REST when a nearline area
// exists), sizes from the areas' live accounting.

// SRR is the top-level report document.
type SRR struct {
	StorageService SRRService `json:"storageservice"`
}

// SRRService is the "storageservice" object.
type SRRService struct {
	Name                  string         `json:"name"`
	ID                    string         `json:"id"`
	ServiceType           string         `json:"servicetype"`
	Implementation        string         `json:"implementation"`
	ImplementationVersion string         `json:"implementationversion"`
	QualityLevel          string         `json:"qualitylevel"`
	LatestUpdate          int64          `json:"latestupdate"`
	Capabilities          []string       `json:"capabilities"`
	StorageCapacity       SRRCapacity    `json:"storagecapacity"`
	StorageEndpoints      []SRREndpoint  `json:"storageendpoints"`
	StorageShares         []SRRShare     `json:"storageshares"`
	DataStores            []SRRDataStore `json:"datastores,omitempty"`
}

// SRRCapacity is "storagecapacity"; Online is required by the schema.
type SRRCapacity struct {
	Online   SRRSize  `json:"online"`
	Nearline *SRRSize `json:"nearline,omitempty"`
}

// SRRSize is a total/used pair in bytes.
type SRRSize struct {
	TotalSize    int64 `json:"totalsize"`
	UsedSize     int64 `json:"usedsize"`
	ReservedSize int64 `json:"reservedsize,omitempty"`
}

// SRREndpoint is one "storageendpoints" item.
type SRREndpoint struct {
	Name             string   `json:"name"`
	EndpointURL      string   `json:"endpointurl"`
	InterfaceType    string   `json:"interfacetype"`
	InterfaceVersion string   `json:"interfaceversion"`
	AssignedShares   []string `json:"assignedshares"`
	Capabilities     []string `json:"capabilities,omitempty"`
	QualityLevel     string   `json:"qualitylevel"`
}

// SRRShare is one "storageshares" item.
type SRRShare struct {
	Name              string   `json:"name"`
	ID                string   `json:"id,omitempty"`
	Timestamp         int64    `json:"timestamp"`
	TotalSize         int64    `json:"totalsize"`
	UsedSize          int64    `json:"usedsize"`
	ReservedSize      int64    `json:"reservedsize,omitempty"`
	VOs               []string `json:"vos"`
	Path              []string `json:"path"`
	AccessLatency     string   `json:"accesslatency"`
	RetentionPolicy   string   `json:"retentionpolicy"`
	ServingState      string   `json:"servingstate"`
	AssignedEndpoints []string `json:"assignedendpoints"`
}

// SRRDataStore is one "datastores" item.
type SRRDataStore struct {
	Name          string `json:"name"`
	DataStoreType string `json:"datastoretype"`
	AccessLatency string `json:"accesslatency"`
	TotalSize     int64  `json:"totalsize"`
	Vendor        string `json:"vendor"`
}

// buildSRR assembles the report for the areas of ns, with the SRM and data
// endpoints at srmPort and dataPort.
func buildSRR(cfg *Config, ns *Namespace, srmPort, dataPort string, now time.Time) *SRR {
	host := cfg.Hostname
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	svc := SRRService{
		Name: cfg.SiteName, ID: cfg.SiteName + ":dynamo-se", ServiceType: "dynamo-se",
		Implementation: "dynamo", ImplementationVersion: version, QualityLevel: "production",
		LatestUpdate: now.Unix(),
		Capabilities: []string{"data.management.transfer", "data.management.storage"},
	}
	svc.StorageEndpoints = []SRREndpoint{
		{Name: cfg.SiteName + "_srm", EndpointURL: "httpg://" + net.JoinHostPort(host, srmPort) + "/srm/managerv2",
			InterfaceType: "srm", InterfaceVersion: "2.2", AssignedShares: []string{"all"}, QualityLevel: "production",
			Capabilities: []string{"data.management.transfer", "data.management.storage"}},
		{Name: cfg.SiteName + "_https", EndpointURL: "https://" + net.JoinHostPort(host, dataPort) + "/",
			InterfaceType: "DAV", InterfaceVersion: "1", AssignedShares: []string{"all"}, QualityLevel: "production",
			Capabilities: []string{"data.management.transfer", "data.management.tpc", "data.management.storage"}},
	}
	var online, nearline SRRSize
	hasTape := false
	areas := append([]*Area(nil), ns.Areas()...)
	sort.Slice(areas, func(i, j int) bool { return areas[i].Config.Name < areas[j].Config.Name })
	for _, a := range areas {
		c := a.Config
		used := a.Used()
		total := c.OnlineSizeLimit
		if total == 0 {
			total = used + diskFree(a)
		}
		sh := SRRShare{
			Name: c.Name, ID: c.SpaceToken, Timestamp: now.Unix(), TotalSize: total, UsedSize: used,
			ReservedSize: a.reserved.Load() + a.Pending(), VOs: areaVOs(c), Path: []string{c.Prefix},
			AccessLatency: strings.ToLower(c.AccessLatency), RetentionPolicy: strings.ToLower(c.RetentionPolicy),
			ServingState: "open", AssignedEndpoints: []string{"all"},
		}
		svc.StorageShares = append(svc.StorageShares, sh)
		if c.AccessLatency == "NEARLINE" {
			hasTape = true
			nearline.TotalSize += total
			nearline.UsedSize += used
		} else {
			online.TotalSize += total
			online.UsedSize += used
		}
	}
	svc.StorageCapacity.Online = online
	if hasTape {
		svc.StorageCapacity.Nearline = &nearline
		svc.StorageEndpoints = append(svc.StorageEndpoints, SRREndpoint{Name: cfg.SiteName + "_tape",
			EndpointURL: "https://" + net.JoinHostPort(host, dataPort) + "/api/v1", InterfaceType: "wlcg-tape-rest-api",
			InterfaceVersion: "v1", AssignedShares: []string{"all"}, QualityLevel: "production"})
	}
	return &SRR{StorageService: svc}
}

// areaVOs lists the VOs the area's rules name (the first element of each
// group, "/cms/uscms" -> "cms").
func areaVOs(c AreaConfig) []string {
	seen := map[string]bool{}
	vos := []string{}
	for _, r := range c.Allow {
		vo, _, _ := strings.Cut(strings.TrimPrefix(r.Group, "/"), "/")
		if vo != "" && !seen[vo] {
			seen[vo] = true
			vos = append(vos, vo)
		}
	}
	return vos
}

// diskFree is the space left on the filesystem of area a (0 when it
// cannot be measured): the capacity of an area without a size limit. It
// asks the area's open root, not its configured path, so the figure is
// that of the tree the SE serves even if the path has since been moved or
// now leads elsewhere.
func diskFree(a *Area) int64 {
	rd, ok := a.drv.(interface{ Root() *rootfs.Root })
	if !ok {
		return 0
	}
	st, err := rd.Root().Statfs()
	if err != nil {
		return 0
	}
	return int64(st.Bavail) * st.Bsize
}

// serveSRR answers /api/v1/srr with the live report. Usage figures are not
// secret (sites publish them to WLCG), so any client may read it.
func (s *Server) serveSRR(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		problem(w, http.StatusMethodNotAllowed, "Method not allowed", "use GET")
		return
	}
	writeJSON(w, http.StatusOK, s.Report(time.Now()))
}

// Report is the live storage resource report (SRR v4.2) of a running SE.
func (s *Server) Report(now time.Time) *SRR {
	return buildSRR(s.cfg, s.ns, portOf(s.SRMAddr(), s.cfg.Listen), portOf(s.DataAddr(), s.cfg.DataListen), now)
}

func portOf(a net.Addr, configured string) string {
	if a != nil {
		configured = a.String()
	}
	_, port, err := net.SplitHostPort(configured)
	if err != nil {
		return configured
	}
	return port
}

// WriteReport measures the configured storage areas (without starting the
// SE) and writes their SRR v4.2 report to file atomically, for sites that
// publish a file. Errors name file as the operator gave it, never a
// temporary's path.
func WriteReport(ctx context.Context, cfg *Config, file string) error {
	ns, err := NewNamespace(ctx, cfg.Areas, newDriver)
	if err != nil {
		return fmt.Errorf("srm report: %w", err)
	}
	data, err := json.MarshalIndent(buildSRR(cfg, ns, portOf(nil, cfg.Listen), portOf(nil, cfg.DataListen), time.Now()), "", "  ")
	if err != nil {
		return fmt.Errorf("srm report: %w", err)
	}
	if err := publishFile(file, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("srm report: writing %s: %w", file, err)
	}
	return nil
}

// publishFile replaces file with data: a temporary in file's directory,
// fsync, rename over the name, fsync of the directory, all through an
// os.Root of that directory so nothing below it is resolved twice by
// path. The directory itself is the operator's choice and may be reached
// through links; an existing link at the name is replaced, never written
// through. The errors it returns carry no physical path.
func publishFile(file string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(filepath.Clean(file))
	if base == "" || base == "." || base == ".." || base == string(filepath.Separator) {
		return errors.New("not a file name")
	}
	if dir == "" {
		dir = "."
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("its directory cannot be opened: %w", errnoOnly(err))
	}
	defer root.Close()
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := "." + base + ".tmp-" + hex.EncodeToString(rnd[:])
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm) // the umask must not narrow what readers were promised
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, base)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return errnoOnly(err)
	}
	// The rename is durable only once the directory is.
	d, err := root.Open(".")
	if err != nil {
		return errnoOnly(err)
	}
	defer d.Close()
	return errnoOnly(d.Sync())
}

// errnoOnly strips the names os attaches to an error, keeping its kind.
func errnoOnly(err error) error {
	if err == nil {
		return nil
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
