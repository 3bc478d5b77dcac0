// Package httpapi serves the agent's HTTP API, /v1/..., in Consul's dialect,
// so that the official github.com/hashicorp/consul/api client and the tools
// built on it (consul-template, Prometheus, Traefik, Spring Cloud Consul)
// work against Meridian unchanged.
//
// Where it sits (DESIGN.md): under the agent, which it reaches through the
// small Agent interface declared here; it knows the catalog's types and the
// rpc package's envelopes, and nothing of Raft or gossip. Every read names an
// RPC endpoint and the agent answers it, in-process on a server or over the
// network from a client agent.
//
// Conventions kept on every endpoint: JSON field names as Consul writes
// them; X-Consul-Index, X-Consul-KnownLeader and X-Consul-LastContact on
// reads; the query parameters dc, stale, consistent, index and wait (Go
// durations or bare seconds); 400 with a one-line reason for bad input, 404
// for unknown objects, 500 "No path to datacenter" for an unknown DC and 503
// when there is no leader.
//
// A Server is safe for concurrent use.
package httpapi
