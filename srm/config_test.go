package srm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	good := `listen: ":8444"
data_listen: ":8443"
cert: /c.pem
key: /k.pem
ca_dir: /ca
storage_areas:
  - name: dteam
    prefix: /dteam
    root: ROOT
    online_size_limit: 1000
    allow: [{group: /dteam, ops: [read, list]}]
engine:
  pick_interval: 250ms
`
	for name, tc := range map[string]struct {
		yaml, wantErr string
	}{
		"good":                    {good, ""},
		"unknown key":             {good + "bogus: 1\n", "unknown key.yaml:14:1: bogus: unknown key"},
		"no areas":                {strings.Split(good, "storage_areas:")[0], "at least one storage area"},
		"relative root":           {strings.Replace(good, "root: ROOT", "root: rel/dir", 1), "must be an absolute path"},
		"missing root":            {strings.Replace(good, "root: ROOT", "root: /nonexistent/x", 1), "not an existing directory"},
		"bad prefix":              {strings.Replace(good, "prefix: /dteam", "prefix: dteam/", 1), "clean absolute path"},
		"bad op":                  {strings.Replace(good, "read, list", "read, fly", 1), `op "fly"`},
		"bad retention":           {strings.Replace(good, "    online_size_limit", "    retention_policy: forever\n    online_size_limit", 1), "retention_policy"},
		"nearline posix":          {strings.Replace(good, "    online_size_limit", "    access_latency: nearline\n    online_size_limit", 1), "needs driver nearline"},
		"same ports":              {strings.Replace(good, `data_listen: ":8443"`, `data_listen: ":8444"`, 1), "must differ"},
		"no cert":                 {strings.Replace(good, "cert: /c.pem\n", "", 1), "host certificate"},
		"bad workers":             {good + "  get_workers: -1\n", "get_workers"},
		"reserved api":            {strings.Replace(good, "prefix: /dteam", "prefix: /api/v1", 1), "reserved data-endpoint path /api"},
		"reserved well-known":     {strings.Replace(good, "prefix: /dteam", "prefix: /.well-known", 1), "reserved data-endpoint path /.well-known"},
		"unknown issuer":          {strings.Replace(good, "{group: /dteam, ops: [read, list]}", "{issuer: wlcg, ops: [read]}", 1), `issuer "wlcg" is not in tokens.issuers`},
		"issuer without audience": {good + "tokens:\n  issuers: [{name: wlcg, issuer: https://wlcg.example/, jwks_file: ROOT}]\n", "tokens.audiences"},
		"issuer without keys":     {good + "tokens:\n  audiences: [x]\n  issuers: [{name: wlcg, issuer: https://wlcg.example/}]\n", "exactly one of jwks_file or public_keys"},
		"http issuer":             {good + "tokens:\n  audiences: [x]\n  issuers: [{name: wlcg, issuer: http://wlcg.example/, jwks_file: ROOT}]\n", "must be an https URL"},
		"missing macaroon secret": {good + "macaroons: {secret_file: /nonexistent/secret}\n", "macaroons.secret_file"},
		"bad tpc":                 {good + "tpc: {max_concurrent: -1}\n", "tpc.max_concurrent"},
		"tape inside root":        {strings.Replace(good, "    online_size_limit", "    driver: nearline\n    nearline: {tape_dir: ROOT/tape}\n    online_size_limit", 1), "must not contain each other"},
		"root inside tape":        {strings.Replace(good, "    online_size_limit", "    driver: nearline\n    nearline: {tape_dir: ROOT/..}\n    online_size_limit", 1), "must not contain each other"},
		"relative tape":           {strings.Replace(good, "    online_size_limit", "    driver: nearline\n    nearline: {tape_dir: tape}\n    online_size_limit", 1), "tape_dir \"tape\" must be an absolute path"},
	} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(f, []byte(strings.ReplaceAll(tc.yaml, "ROOT", root)), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := yamlconf.Load(f, DecodeConfig)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Engine.PickInterval.Milliseconds() != 250 || c.Engine.GetWorkers != 8 || c.Areas[0].Protocols[0] != "https" ||
					c.Areas[0].RetentionPolicy != "REPLICA" || c.MaxLsEntries != 2000 {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}
