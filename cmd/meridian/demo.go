package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/meridian/meridian/agent"
	"github.com/meridian/meridian/configs"
)

// demoDC is one datacenter of the federation demo: a dev server on
// 127.0.0.1 with ports of its own, and the services it runs.
type demoDC struct {
	name     string
	base     int // HTTP port; DNS is base+100, server base-200, LAN base-199, WAN base-198
	services []configs.ServiceDefinition
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logLevel := fs.String("log-level", "warn", "log level of both agents: trace, debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: meridian demo [options]

Runs two federated datacenters on 127.0.0.1 in one process, in memory, to try
cross-datacenter queries and failover with nothing else installed:
  dc1: HTTP 127.0.0.1:8500, DNS 127.0.0.1:8600 (web)
  dc2: HTTP 127.0.0.1:8510, DNS 127.0.0.1:8610 (web and api)
dc1 fails over to the nearest other datacenter for any service it has no
healthy instance of. Stop it with Ctrl-C.

Options:
`)
		fs.PrintDefaults()
	}
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	dcs := []demoDC{
		{name: "dc1", base: 8500, services: []configs.ServiceDefinition{
			{Name: "web", Address: "10.1.0.1", Port: 80, Tags: []string{"v1"}},
		}},
		{name: "dc2", base: 8510, services: []configs.ServiceDefinition{
			{Name: "web", Address: "10.2.0.1", Port: 80, Tags: []string{"v1"}},
			{Name: "api", Address: "10.2.0.2", Port: 8080},
		}},
	}
	// One gossip key for both: gossip is encrypted and the WAN links are
	// authenticated with certificates derived from it.
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		fmt.Fprintf(stderr, "meridian demo: %v\n", err)
		return 1
	}
	var agents []*agent.Agent
	defer func() {
		for _, a := range agents {
			a.Shutdown()
		}
	}()
	// Ctrl-C while the datacenters start stops the start.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	for i, dc := range dcs {
		p := func(off int) string { return strconv.Itoa(dc.base + off) }
		flags := []string{"-dev", "-datacenter", dc.name, "-node", dc.name + "-server", "-log-level", *logLevel,
			"-http-port", p(0), "-dns-port", p(100), "-server-port", p(-200), "-serf-lan-port", p(-199), "-serf-wan-port", p(-198),
			"-encrypt", base64.StdEncoding.EncodeToString(key[:])}
		if i > 0 {
			flags = append(flags, "-join-wan", "127.0.0.1:"+strconv.Itoa(dcs[0].base-198))
		}
		cfg, err := configs.Load(flags, nil, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "meridian demo: %s: %v\n", dc.name, err)
			return 1
		}
		cfg.Services = dc.services
		cfg.Failover = map[string]configs.FailoverPolicy{"*": {Nearest: 1}}
		cfg.DNSConfig.FailoverTXT = true
		level := new(slog.LevelVar)
		level.Set(agent.LogLevel(cfg.LogLevel))
		a, err := agent.New(cfg, agent.Options{Logger: newLogger(stderr, level, false)})
		if err == nil {
			err = a.Start(ctx)
		}
		if err != nil {
			fmt.Fprintf(stderr, "meridian demo: %s: %v\n", dc.name, err)
			return 1
		}
		agents = append(agents, a)
	}
	fmt.Fprint(stdout, `==> Two federated datacenters are running (in memory; Ctrl-C stops them):
    dc1  HTTP http://127.0.0.1:8500  DNS 127.0.0.1:8600  runs web (10.1.0.1)
    dc2  HTTP http://127.0.0.1:8510  DNS 127.0.0.1:8610  runs web (10.2.0.1) and api (10.2.0.2)

Try, from another terminal:
    curl localhost:8500/v1/catalog/datacenters
    curl 'localhost:8500/v1/health/service/web?dc=dc2'        # dc2's web, asked in dc1
    dig @127.0.0.1 -p 8600 web.service.dc2.consul +short      # 10.2.0.1
    dig @127.0.0.1 -p 8600 api.service.consul                 # none in dc1: failed over to dc2 (TXT says so)
    curl -i 'localhost:8500/v1/health/service/api?passing'    # X-Meridian-Failover-Datacenter: dc2
    go run ./cmd/meridian members -wan
    go run ./cmd/meridian kv put -http-addr 127.0.0.1:8510 greeting hello   # dc2's KV only
    open http://127.0.0.1:8500/ui/#/services/api              # the web UI: api answered from dc2
`)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	select {
	case <-signals:
	case <-agents[0].Done():
	case <-agents[1].Done():
	}
	return 0
}
