// Package agent runs one Meridian agent: the process every host runs, in
// client or server mode.
//
// Where it sits (DESIGN.md): at the top, under cmd/meridian. It turns a
// validated configs.Config into the parts below and starts and stops them in
// order: the LAN gossip pool (package lan), the Raft server (package server)
// in server mode or a pool of RPC connections to the datacenter's servers in
// client mode, and the HTTP API (package httpapi). A client agent holds no
// replicated state: every read and write is an RPC to a server of its
// datacenter, retried on another server when one is down. Blocking reads of
// a service's health are the exception (stream.go): with
// use_streaming_backend they are answered from a local view of the service
// that one subscription to a server keeps current, however many watch it.
//
// TLS (tls.go) comes from the tls stanza: the server port's certificates
// (RPC, Raft, WAN links) and HTTPS's, reread on Reload. The gossip keyring
// (keyring.go) is rotated through serf's key manager on the LAN and, on a
// server, WAN pools.
//
// An Agent is safe for concurrent use.
package agent
