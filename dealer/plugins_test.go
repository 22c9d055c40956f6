package dealer_test

import (
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/testdb"
)

// pluginWorld is the inventory the per-plugin tables start from: three
// ready disk sites, a tape site, a morgue site and a few datasets.
const pluginWorld = `
site T2_A disk ready quota=100TB
site T2_B disk ready quota=100TB
site T2_C disk ready quota=100TB
site T1_TAPE mss ready
site T2_DEAD disk morgue quota=100TB
group AnalysisOps
group DataOps
dataset /A/R/AOD blocks=4 size=1TB
dataset /B/R/AOD blocks=2 size=1TB
dataset /C/R/MINIAOD blocks=1 size=1TB
replica /A/R/AOD T1_TAPE
replica /B/R/AOD T2_A
replica /C/R/MINIAOD T2_B group=DataOps
config {max_pending_fraction: 1}
`

// only enables one plugin.
func only(plugin string) string {
	var b strings.Builder
	b.WriteString("config {plugins: {")
	for i, p := range []string{"requests", "enforcer", "popularity", "balancer", "undertaker", "groupreassign"} {
		if i > 0 {
			b.WriteString(", ")
		}
		on := "false"
		if p == plugin {
			on = "true"
		}
		b.WriteString(p + ": {enabled: " + on)
		if p == "groupreassign" {
			b.WriteString(", from_groups: [DataOps]")
		}
		b.WriteString("}")
	}
	b.WriteString("}}\n")
	return b.String()
}

type pluginCase struct {
	name  string
	lines string // scenario lines after the world: inputs, config, plan and expectations
}

func runPluginTable(t *testing.T, plugin string, cases []pluginCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := pluginWorld + only(plugin) + tc.lines
			runScenario(t, plugin+"/"+tc.name, src, testdb.SQLite(t))
		})
	}
}

func TestRequestsPluginTable(t *testing.T) {
	runPluginTable(t, "requests", []pluginCase{
		{"copy in transfer keeps request activated", `
replica /A/R/AOD T2_C incomplete
request 1 activated n=1 items=/A/R/AOD sites=T2_C
plan
expect copies 0
expect request 1 activated`},
		{"complete copies complete the request", `
request 1 activated n=1 items=/B/R/AOD sites=T2_A
plan
expect request 1 completed`},
		{"more copies wanted than sites", `
request 1 new n=4 items=/A/R/AOD sites=T2_A,T2_B,T2_C
plan
expect copies 3
expect reject /A/R/AOD "no destination"
expect request 1 activated`},
		{"repeated item collapses", `
request 1 new n=1 items=/A/R/AOD,/A/R/AOD sites=T2_*
plan
expect copies 1
expect rejections 0`},
		{"block and its dataset is the dataset", `
request 1 new n=1 items=/A/R/AOD#b0,/A/R/AOD sites=T2_C
plan
expect copy /A/R/AOD T2_C bytes=1TB`},
		{"upgrade disabled keeps blocks", `
config {plugins: {requests: {block_upgrade_fraction: 0}}}
request 1 new n=1 items=/A/R/AOD#b0,/A/R/AOD#b1,/A/R/AOD#b2 sites=T2_C
plan
expect copy "/A/R/AOD (3 blocks)" T2_C bytes=750GB`},
		{"requested group owns the copy", `
request 1 new n=1 items=/A/R/AOD sites=T2_C group=DataOps
plan
expect copy /A/R/AOD T2_C group=DataOps`},
		{"empty request rejected", `
request 1 new n=1 sites=T2_C
plan
expect request 1 rejected`},
		{"cancelled and completed requests ignored", `
request 1 cancelled n=1 items=/A/R/AOD sites=T2_C
request 2 completed n=1 items=/A/R/AOD sites=T2_C
plan
expect copies 0
expect rejections 0`},
	})
}

func TestEnforcerPluginTable(t *testing.T) {
	runPluginTable(t, "enforcer", []pluginCase{
		{"copy owned by another group does not count", `
site T2_US_X disk ready quota=100TB
replica /C/R/MINIAOD T2_US_X group=DataOps
site T2_US_Y disk ready quota=100TB
site T2_US_Z disk ready quota=100TB
enforcer enforcer_default.json
plan
expect copies 2
expect copy /C/R/MINIAOD T2_US_[YZ] group=AnalysisOps`},
		{"no destination site at all", `
enforcer enforcer_default.json
plan
expect reject /C/R/MINIAOD "no destination"`},
	})
}

func TestPopularityPluginTable(t *testing.T) {
	runPluginTable(t, "popularity", []pluginCase{
		{"max replication caps", `
config {plugins: {popularity: {max_replication: 2}}}
access /B/R/AOD count=100 age=0s
plan
expect copies 1`},
		{"source groups filter", `
config {plugins: {popularity: {source_groups: [AnalysisOps]}}}
access /C/R/MINIAOD count=100 age=0s
access /B/R/AOD count=4 age=0s
plan
expect nocopy /C/R/MINIAOD
expect copy /B/R/AOD T2_[BC]`},
		{"old accesses have decayed", `
access /B/R/AOD count=100 age=2400h
plan
expect copies 0`},
		{"unknown dataset ignored", `
access ?/No/Such/AOD count=100 age=0s
plan
expect copies 0
expect rejections 0`},
	})
}

func TestBalancerPluginTable(t *testing.T) {
	runPluginTable(t, "balancer", []pluginCase{
		{"within tolerance nothing moves", `
protect T2_A 0.20 /B/R/AOD
protect T2_B 0.18
plan
expect copies 0`},
		{"without protection figures nothing moves", `
plan
expect copies 0`},
		{"unknown last copy skipped", `
protect T2_A 0.50 ?/No/Such/AOD /B/R/AOD
protect T2_B 0.10
plan
expect copy /B/R/AOD T2_[BC] plugin=balancer`},
	})
}

func TestUndertakerPluginTable(t *testing.T) {
	runPluginTable(t, "undertaker", []pluginCase{
		{"sole copy at a morgue site is saved", `
dataset /D/R/AOD blocks=1 size=1TB
replica /D/R/AOD T2_DEAD
plan
expect copy /D/R/AOD T2_[ABC]`},
		{"unowned replicas are not saved", `
dataset /D/R/AOD blocks=1 size=1TB
replica /D/R/AOD T2_DEAD group=None
plan
expect copies 0`},
		{"additional sites are evacuated", `
config {plugins: {undertaker: {additional_sites: [T2_A]}}}
plan
expect copy /B/R/AOD T2_[BC] plugin=undertaker`},
	})
}

func TestGroupReassignPluginTable(t *testing.T) {
	runPluginTable(t, "groupreassign", []pluginCase{
		{"replica of a from-group is reassigned in place", `
plan
expect copy /C/R/MINIAOD T2_B group=AnalysisOps bytes=0`},
		{"not at sites outside target_sites", `
config {target_sites: ["!T2_B"]}
plan
expect copies 0`},
	})
}

func TestPriorityDecidesWhoGetsTheLastSpace(t *testing.T) {
	// One site with room for one dataset; requests (priority 1) and
	// popularity (priority 3) both want it: the request goes first.
	src := `
site T2_A disk ready quota=1.2TB
site T1_TAPE mss ready
group AnalysisOps
dataset /P/R/AOD blocks=1 size=1TB
dataset /Q/R/AOD blocks=1 size=1TB
replica /P/R/AOD T1_TAPE
replica /Q/R/AOD T1_TAPE
config {max_pending_fraction: 1, target_occupancy: 1}
config {plugins: {enforcer: {enabled: false}, balancer: {enabled: false}, undertaker: {enabled: false}}}
access /P/R/AOD count=100 age=0s
request 1 new n=1 items=/Q/R/AOD sites=T2_A
plan
expect copy /Q/R/AOD T2_A plugin=requests
expect reject /P/R/AOD "no destination" plugin=popularity
`
	runScenario(t, "priority", src, testdb.SQLite(t))
}
