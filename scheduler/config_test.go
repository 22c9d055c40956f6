package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

func TestDecodeConfig(t *testing.T) {
	c, err := yamlconf.Read(strings.NewReader(`
lease_period: 30s
heartbeat: 5s
grace: 1m
sequences: /etc/dynamo/cms.seq
cron:
  - schedule: "0 */4 * * *"
    app: detox:Physics
    args: [--policy, /etc/dynamo/Physics.txt]
  - name: dealer-test
    schedule: "@every 30m"
    app: dealer
    read_only: true
    timeout: 10m
`), DecodeConfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.LeasePeriod != 30*time.Second || c.Heartbeat != 5*time.Second || c.Grace != time.Minute ||
		c.DefaultTimeout != DefaultConfig().DefaultTimeout || c.MaxReaders != 8 || c.ServerID == "" {
		t.Fatalf("config: %+v", c)
	}
	if c.Cron[0].Name != "detox:Physics" || c.Cron[1].Timeout != 10*time.Minute || !c.Cron[1].ReadOnly {
		t.Fatalf("cron: %+v", c.Cron)
	}
	if c, err := yamlconf.Read(strings.NewReader(""), DecodeConfig); err != nil || c.LeasePeriod != DefaultConfig().LeasePeriod {
		t.Fatalf("empty config: %+v %v", c, err)
	}
}

func TestDecodeConfigBad(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown key", "lease: 3s\n", "1:1: lease: unknown key"},
		{"bad duration", "grace: soon\n", `1:8: grace: "soon" is not a duration`},
		{"negative duration", "grace: -1s\n", `1:8: grace: "-1s" is negative`},
		{"short lease", "lease_period: 500ms\nheartbeat: 100ms\n", "scheduler.lease_period 500ms: at least 1s"},
		{"slow heartbeat", "lease_period: 10s\nheartbeat: 5s\n", "scheduler.heartbeat 5s: must be positive and at most a third"},
		{"readers", "max_readers: -1\n", "scheduler.max_readers -1"},
		{"bad cron spec", "cron: [{schedule: 'every day', app: noop}]\n", "scheduler.cron[0].schedule \"every day\""},
		{"bad app name", "cron: [{schedule: '@daily', app: 'no op'}]\n", "scheduler.cron[0].app"},
		{"duplicate entry", "cron: [{schedule: '@daily', app: noop}, {schedule: '@hourly', app: noop}]\n", "scheduler.cron[1]: name \"noop\" used twice"},
		{"unknown cron key", "cron: [{schedule: '@daily', app: noop, when: now}]\n", "1:40: cron[0].when: unknown key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := yamlconf.Read(strings.NewReader(c.yaml), DecodeConfig)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}
