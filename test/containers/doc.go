//go:build containers

// Package containers is the multi-host test suite: every Meridian agent runs
// in its own Docker container, each datacenter on a private Docker network of
// its own and the servers also on a WAN network, and the tests kill, restart
// and cut those containers off, and fail a service's instances so that
// lookups fail over to the other datacenter, while driving the agents from
// the host with the official github.com/hashicorp/consul/api client and a
// github.com/miekg/dns client.
//
// It is the "multi-host tests" tier of DESIGN.md's Testing section: the
// in-process harness (internal/testcluster) runs agents on 127.0.0.1 with
// ports from :0, whereas here each agent has real addresses, the default
// ports and the production timings, and a network partition is a real one
// (docker network disconnect).
//
// Every file carries the build tag "containers", so `go test ./...` neither
// compiles nor runs the suite. Run it with
//
//	go test -tags containers -count=1 -timeout 15m ./test/containers/
//
// It needs a Docker engine and nothing from a registry: TestMain builds a
// static meridian binary (CGO_ENABLED=0) and an image FROM scratch holding
// only that binary. See README.md for the network layout and timings.
package containers
