package agent

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meridian/meridian/rpc"
)

// stats is the Stats of /v1/agent/self and `meridian info`: Consul's
// sections agent, build, consul, raft (servers), runtime, serf_lan and
// serf_wan (servers), every value a string.
func (a *Agent) stats() map[string]map[string]string {
	services, checks, monitors, ttls := a.localCounts()
	out := map[string]map[string]string{
		"agent": {
			"services":       strconv.Itoa(services),
			"checks":         strconv.Itoa(checks),
			"check_monitors": strconv.Itoa(monitors),
			"check_ttls":     strconv.Itoa(ttls),
		},
		"build": {"version": Version, "revision": "", "prerelease": "", "version_metadata": ""},
		"runtime": {
			"os":         runtime.GOOS,
			"arch":       runtime.GOARCH,
			"version":    runtime.Version(),
			"cpu_count":  strconv.Itoa(runtime.NumCPU()),
			"max_procs":  strconv.Itoa(runtime.GOMAXPROCS(0)),
			"goroutines": strconv.Itoa(runtime.NumGoroutine()),
		},
		"serf_lan": a.lan.Stats(),
	}
	consul := map[string]string{"server": strconv.FormatBool(a.server != nil), "acl": "disabled"}
	if a.server != nil {
		consul["bootstrap"] = strconv.FormatBool(a.cfg.Bootstrap)
		consul["leader"] = strconv.FormatBool(a.server.IsLeader())
		consul["leader_addr"] = a.server.Leader()
		consul["known_datacenters"] = strconv.Itoa(len(a.server.Datacenters()))
		out["raft"] = a.server.Stats()
		if a.wan != nil {
			out["serf_wan"] = a.wan.Stats()
		}
		if repl := kvReplicationStats(a.server.KVReplication()); repl != nil {
			out["kv_replication"] = repl
		}
	} else {
		consul["known_servers"] = strconv.Itoa(len(a.servers.pick()))
	}
	out["consul"] = consul
	return out
}

// kvReplicationStats is the kv_replication section of a server with
// replication rules: one line per prefix ("*" for every key), nil without
// rules.
func kvReplicationStats(rules []rpc.KVReplicationStatus) map[string]string {
	if len(rules) == 0 {
		return nil
	}
	out := make(map[string]string, len(rules))
	for _, r := range rules {
		line := "from " + r.SourceDatacenter + ", writes " + r.Writes
		if !r.Running {
			line += ", not running here (the leader replicates)"
		} else {
			line += ", index " + strconv.FormatUint(r.ReplicatedIndex, 10) + ", lag " + r.Lag.String()
			if r.LastErrorMessage != "" && r.LastError.After(r.LastSuccess) {
				line += ", failing: " + r.LastErrorMessage
			}
		}
		key := r.Prefix
		if key == "" {
			key = "*"
		}
		out[key] = line
	}
	return out
}

// localCounts counts the local services and checks, and of the checks the
// script (monitor) and TTL ones.
func (a *Agent) localCounts() (services, checks, monitors, ttls int) {
	l := a.local
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.checks {
		switch {
		case c.def.TTL > 0:
			ttls++
		case len(c.def.Args) > 0:
			monitors++
		}
	}
	return len(l.services), len(l.checks), monitors, ttls
}

// Host describes the machine the agent runs on, for /v1/agent/host, in
// the shape of Consul's answer (which gopsutil fills there; here /proc and
// statfs, on Linux). Parts that cannot be read are named in Errors.
func (a *Agent) Host() map[string]any {
	var errs []string
	host := map[string]any{"os": runtime.GOOS, "platform": runtime.GOOS, "kernelArch": runtime.GOARCH}
	if name, err := os.Hostname(); err == nil {
		host["hostname"] = name
	} else {
		errs = append(errs, "hostname: "+err.Error())
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		host["kernelVersion"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if up, err := strconv.ParseFloat(f[0], 64); err == nil {
				host["uptime"] = uint64(up)
				host["bootTime"] = uint64(time.Now().Unix()) - uint64(up)
			}
		}
	}
	mem := map[string]any{}
	if m, err := meminfo(); err == nil {
		total, avail := m["MemTotal"], m["MemAvailable"]
		mem["total"], mem["available"], mem["free"] = total, avail, m["MemFree"]
		mem["used"] = total - avail
		if total > 0 {
			mem["usedPercent"] = 100 * float64(total-avail) / float64(total)
		}
	} else {
		errs = append(errs, "memory: "+err.Error())
	}
	disk := map[string]any{"path": a.cfg.DataDir}
	var st syscall.Statfs_t
	if a.cfg.DataDir != "" {
		if err := syscall.Statfs(a.cfg.DataDir, &st); err == nil {
			total, free := st.Blocks*uint64(st.Bsize), st.Bavail*uint64(st.Bsize)
			disk["total"], disk["free"], disk["used"] = total, free, total-free
			if total > 0 {
				disk["usedPercent"] = 100 * float64(total-free) / float64(total)
			}
		} else {
			errs = append(errs, "disk: "+err.Error())
		}
	}
	cpus := make([]map[string]any, runtime.NumCPU())
	model := cpuModel()
	for i := range cpus {
		cpus[i] = map[string]any{"cpu": int32(i), "modelName": model, "cores": int32(1)}
	}
	if errs == nil {
		errs = []string{}
	}
	return map[string]any{
		"Host": host, "Memory": mem, "Disk": disk, "CPU": cpus,
		"CollectionTime": time.Now().UnixNano(), "Errors": errs,
	}
}

// meminfo reads /proc/meminfo in bytes.
func meminfo() (map[string]uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(rest)
		if !ok || len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		if len(fields) > 1 && fields[1] == "kB" {
			n *= 1024
		}
		out[name] = n
	}
	return out, sc.Err()
}

// cpuModel is the first model name in /proc/cpuinfo, or "".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, val, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return ""
}
