package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// cpuCgroup caps one server process at a fixed share of a core with the
// kernel's CFS bandwidth control, so that on a host with fewer cores than
// servers each server still has the same CPU budget as a server with a
// host of its own would have of its cores: aggregate read throughput then
// grows with the number of servers while the servers are the bottleneck,
// which a shared, unlimited run on two cores cannot show.
type cpuCgroup struct {
	dir string
	v2  bool
}

// cfsPeriodMicros is the bandwidth period; the quota is a fraction of it.
const cfsPeriodMicros = 100_000

// cpuCgroupRoot is where the cpu controller lives: the v1 hierarchy, or
// the v2 unified one when it delegates cpu to its children.
func cpuCgroupRoot() (dir string, v2 bool, err error) {
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err == nil {
		return "/sys/fs/cgroup/cpu", false, nil
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control"); err == nil && slices.Contains(strings.Fields(string(b)), "cpu") {
		return "/sys/fs/cgroup", true, nil
	}
	return "", false, errors.New("no cpu cgroup controller under /sys/fs/cgroup (v1 cpu, or v2 with cpu in cgroup.subtree_control)")
}

// cpuPriority is the groups' weight against everything else on the host,
// ten times a plain process's: on a busy host a capped server still gets
// its whole budget (the quota bounds what it takes), and the generator
// keeps up with the servers. Without it the other processes' share, not
// the servers' budget, would set the figure.
const (
	cpuSharesV1 = 10 * 1024 // cpu.shares, default 1024
	cpuWeightV2 = 10 * 100  // cpu.weight, default 100
)

// newCPUCgroup creates the group name with a quota of cores (0.5 = half a
// core; 0 = no cap) and a high weight, and moves pid, with all its
// threads, into it.
func newCPUCgroup(name string, cores float64, pid int) (*cpuCgroup, error) {
	root, v2, err := cpuCgroupRoot()
	if err != nil {
		return nil, err
	}
	g := &cpuCgroup{dir: filepath.Join(root, name), v2: v2}
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		return nil, fmt.Errorf("cpu cgroup: %w (a per-server CPU quota needs root)", err)
	}
	quota := int64(cores * cfsPeriodMicros)
	switch {
	case v2 && quota > 0:
		err = errors.Join(os.WriteFile(filepath.Join(g.dir, "cpu.weight"), fmt.Appendf(nil, "%d", cpuWeightV2), 0),
			os.WriteFile(filepath.Join(g.dir, "cpu.max"), fmt.Appendf(nil, "%d %d", quota, cfsPeriodMicros), 0))
	case v2:
		err = os.WriteFile(filepath.Join(g.dir, "cpu.weight"), fmt.Appendf(nil, "%d", cpuWeightV2), 0)
	case quota > 0:
		err = errors.Join(os.WriteFile(filepath.Join(g.dir, "cpu.shares"), fmt.Appendf(nil, "%d", cpuSharesV1), 0),
			os.WriteFile(filepath.Join(g.dir, "cpu.cfs_period_us"), fmt.Appendf(nil, "%d", cfsPeriodMicros), 0),
			os.WriteFile(filepath.Join(g.dir, "cpu.cfs_quota_us"), fmt.Appendf(nil, "%d", quota), 0))
	default:
		err = os.WriteFile(filepath.Join(g.dir, "cpu.shares"), fmt.Appendf(nil, "%d", cpuSharesV1), 0)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(g.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
	}
	if err != nil {
		g.remove()
		return nil, fmt.Errorf("cpu cgroup %s: %w", name, err)
	}
	return g, nil
}

// throttle reads the bandwidth counters: enforcement periods elapsed and
// those in which the group used up its quota and was stopped.
func (g *cpuCgroup) throttle() (periods, throttled int64) {
	b, err := os.ReadFile(filepath.Join(g.dir, "cpu.stat"))
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "nr_periods":
			periods = n
		case "nr_throttled":
			throttled = n
		}
	}
	return periods, throttled
}

// remove deletes the group; the kernel refuses while a process is in it,
// so it is called after the server has exited.
func (g *cpuCgroup) remove() {
	if g != nil {
		_ = os.Remove(g.dir)
	}
}

// leave moves pid back to the parent group and removes the group: used
// for the benchmark's own process, which outlives it.
func (g *cpuCgroup) leave(pid int) {
	if g == nil {
		return
	}
	_ = os.WriteFile(filepath.Join(filepath.Dir(g.dir), "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
	g.remove()
}

// procCPUSeconds is a process's user+system CPU time, all threads, from
// /proc/PID/stat (in clock ticks of USER_HZ, 100 on Linux).
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// Fields 14 and 15 of stat(5) (utime, stime) are 12 and 13 after the
	// command name.
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return float64(utime+stime) / 100, nil
}
