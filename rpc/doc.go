// Package rpc is Meridian's wire: the first-byte protocol switch on the
// server port, multiplexed sessions, the msgpack codec, and a request/response
// RPC layer with a client connection pool.
//
// In DESIGN.md it is the bottom of the network stack: the server, federation
// and httpapi packages import it; it imports only the standard library,
// yamux and go-msgpack (and, later, quic-go).
//
// The pieces, from the socket up:
//
//   - Mux splits one TCP listener (port 8300) by the first byte of each
//     connection: ProtoRaft connections go to the Raft transport, ProtoMux
//     connections carry a yamux session of RPC streams. DialProto is the
//     matching dialer.
//   - Session is one multiplexed connection (yamux today, QUIC later); RPC
//     code only opens and accepts streams on it.
//   - Marshal, Unmarshal, NewEncoder and NewDecoder are the one msgpack
//     configuration used for RPC bodies, Raft log entries and snapshots.
//   - Server dispatches streams to handlers registered with Register; Pool is
//     the client side, one session per server address shared by all callers.
//
// A remote failure arrives as an *Error whose Code lets errors.Is match it
// against sentinels defined anywhere; a broken connection arrives wrapping
// ErrTransport, which tells the caller to try another server.
//
// Wire format of one call, on one stream: the client sends a frame holding
// the method (msgpack str), the caller's remaining time in nanoseconds
// (msgpack int64, 0 for none) and the msgpack body; the server answers with a
// frame holding the error code and message (msgpack str, both empty on
// success) followed, on success only, by the msgpack reply. A frame is a
// 4-byte big-endian length and that many bytes. A stream may carry any number
// of calls one after the other; the Pool reuses idle streams.
//
// Mux, Server, Pool and every Session are safe for concurrent use. Encoders
// and decoders returned by NewEncoder and NewDecoder are not.
package rpc
