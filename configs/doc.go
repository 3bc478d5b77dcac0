// Package configs loads a Meridian agent's configuration into one validated
// Config.
//
// Where it sits (DESIGN.md, "Configuration"): under cmd/meridian, which calls
// Load with the arguments after `meridian agent`; the agent package turns the
// Config into the configs of the packages below it. configs imports nothing of
// Meridian and is the only package that imports viper (with acl, it reads
// HCL too).
//
// The simplest use is what `meridian agent` does:
//
//	cfg, err := configs.Load(os.Args[2:], os.Environ(), os.Stderr)
//	if errors.Is(err, flag.ErrHelp) {
//		return // usage was written to stderr
//	}
//
// Sources, highest precedence first:
//
//  1. command-line flags (Go's flag package, so -server and --server both
//     work, with Consul's names: -bootstrap-expect, -data-dir, -node, ...);
//     only the flags the user set count;
//  2. the environment: MERIDIAN_ and the key in upper case with '.' as '_'
//     (MERIDIAN_DATACENTER, MERIDIAN_NODE_NAME, MERIDIAN_PORTS_HTTP); an empty
//     variable counts as unset; lists (MERIDIAN_RETRY_JOIN) are comma-separated;
//  3. files: each -config-file, and every *.hcl, *.json, *.yaml and *.yml
//     file of each -config-dir in lexical order, in the order the flags were
//     given; a later file overrides the keys an earlier one set. Another
//     file in a config dir is skipped with a warning unless -config-format
//     names the format every file is read in. -hcl fragments are read after
//     the environment and before the other flags;
//  4. defaults (Default), some of which depend on other keys: in dev mode the
//     agent is a bootstrapping server with the UI on, bound to 127.0.0.1; a
//     server does not leave on SIGTERM and does leave on SIGINT, a client the
//     reverse (as Consul).
//
// HCL is Consul's primary format, read with hashicorp/hcl v1 as Consul
// reads it (hcl.go): a repeated block (`service { }` twice) is a list where
// the schema has a list and merges where it has one mapping (`ports { }`);
// errors in HCL name the file and line ("a.hcl:7: service[1].prot: unknown
// key"). Keys of Consul's agent configuration that Meridian does not
// implement (connect, peering, ports.grpc's siblings, audit, ...; the table
// is consulOnlyKeys in consul.go) load with one warning each saying they have
// no effect, so an existing Consul config dir works unchanged; a key nobody
// knows is an error. An empty file, in any format, is valid.
//
// Keys are Consul's snake_case names; CamelCase spellings (ServiceID,
// TLSSkipVerify) are accepted too. Lists of definitions are collected rather
// than replaced: services and checks from every file are appended in file
// order, and so are start_join, retry_join, start_join_wan and
// retry_join_wan; node_meta maps from every file, variable and flag merge; a -join, -retry-join, -join-wan or -retry-join-wan flag (or
// its MERIDIAN_ variable) replaces what the files listed. A file may hold one
// `service:` or a list of `services:` (and `check:` or `checks:`).
//
// WAN federation (DESIGN.md, "WAN links") is configured on servers only:
// start_join_wan and retry_join_wan (with retry_interval_wan and
// retry_max_wan) name servers of other datacenters to join over WAN gossip,
// advertise_addr_wan the IP they reach this server at (AdvertiseWAN),
// wan_transport how this server dials WAN links (quic, or tcp where UDP is
// blocked) and the federation section how requests for other datacenters
// behave.
//
// TLS is Consul's tls stanza (tls.defaults, tls.internal_rpc for the server
// port, RPC, Raft and WAN links, tls.https) with the older top-level keys
// (ca_file, cert_file, key_file, verify_incoming, verify_outgoing,
// verify_server_hostname) as fallback; InternalRPCTLS and HTTPSTLS resolve
// them. The files are opened when the configuration is validated, so a
// missing or unreadable one stops the agent at start.
//
// A bad configuration is refused with the source, the key and the reason:
//
//	server1/agent.yaml: ports.http: must be 0-65535, got 70000
//	server1/agent.yaml: bootstrap_expct: unknown key, did you mean "bootstrap_expect"?
//	flag -retry-interval: retry_interval: must be positive, got -1s
//	client1/agent.yaml: retry_join_wan: only servers join the WAN pool; set server: true
//
// Adding a key is adding a field with a `config:"name"` tag to Config (or to a
// section struct such as Ports); files, the environment, the schema check
// and "did you mean" pick it up from the tag. A flag also needs a line in
// flagSpecs. A map-valued key whose map keys are user data must be collected
// like services (viper lower-cases map keys when it merges).
//
// Load, Default and HTTPAddr are safe for concurrent use; a Config is a plain
// value that is safe to read from many goroutines once loaded.
package configs
