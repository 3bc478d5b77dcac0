// Package dns is Meridian's DNS interface: it answers the Consul dialect of
// names under the "consul." domain (and an optional alternative domain) over
// UDP and TCP on one port, and forwards every other name to the configured
// recursors.
//
// It sits beside httpapi in the design: the agent owns a Server and hands it
// a Backend, the small interface through which the package reads the catalog
// (service instances with their checks, nodes, known datacenters). The
// package never imports agent, server or rpc, and keeps every
// github.com/miekg/dns type unexported so that a move to miekg/dns v2 stays
// local to this directory.
//
// A service lookup does not cost an RPC: the first lookup of a (datacenter,
// service) pair fetches it once, then a background goroutine keeps it fresh
// with blocking queries until the entry goes unused for Config.ViewIdle. The
// healthy instances and their resource records are precomputed whenever the
// data changes, so answering is a tag filter, a shuffle and a copy.
//
// The simplest use binds UDP and TCP on one port:
//
//	srv, err := dns.New(dns.DefaultConfig(), backend)
//	if err != nil { ... }
//	addr, err := srv.Listen("127.0.0.1:8600")
//	...
//	defer srv.Shutdown(ctx)
//
// A caller that already holds sockets passes them to Serve instead. A Server
// is safe for concurrent use; Shutdown stops the listeners and every
// background goroutine and waits for them.
package dns
