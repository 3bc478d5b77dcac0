// Package rpc is Meridian's wire: the first-byte protocol switch on the
// server port, multiplexed sessions, the msgpack codec, and a request/response
// RPC layer with a client connection pool.
//
// In DESIGN.md it is the bottom of the network stack: the server, federation
// and httpapi packages import it; it imports only the standard library,
// yamux, quic-go and go-msgpack.
//
// The pieces, from the socket up:
//
//   - Mux splits one TCP listener (port 8300) by the first byte of each
//     connection: ProtoRaft connections go to the Raft transport, ProtoMux
//     connections carry a yamux session of RPC streams, and ProtoTLS
//     (Consul's RPCTLS) connections are TLS, inside which the first byte
//     is again ProtoRaft or ProtoMux. DialProto and DialTLS are the
//     matching dialers. With MuxConfig.TLS's VerifyIncoming, plain
//     connections and peers without a certificate of the CA are refused,
//     and Raft needs a server's certificate (verify_server_hostname).
//   - Session is one multiplexed connection; RPC code only opens and
//     accepts streams on it, and never knows which kind it has. A yamux
//     session over TCP (NewYamuxClient, NewYamuxServer) carries LAN RPC,
//     and WAN links where UDP is blocked. A QUIC connection (DialQUIC,
//     ListenQUIC on UDP port 8300) carries WAN links between servers of
//     different datacenters: each call rides its own QUIC stream, so a slow
//     or large call never holds up another (no head-of-line blocking), and
//     a peer silent for QUICConfig.MaxIdleTimeout (3s) is declared dead.
//   - TLS for WAN links is always on (TLS 1.3, ALPN "meridian-wan/1"), from
//     one of three sources, strongest first: TLSConfigurator.WANConfig (CA,
//     certificate and key files; both sides must chain to the CA),
//     ClusterTLS (a CA derived
//     from a secret the servers share, the gossip key; same secret
//     connects, different secrets fail the handshake), EphemeralTLS
//     (self-signed, encryption without authentication, for dev mode). Each
//     returns one *tls.Config that serves both for listening and dialing.
//     Servers are reached by IP, so host names are not what is checked:
//     WANConfig checks the server name of the datacenter dialed.
//   - TLSConfigurator loads an agent's CA, certificate and key files (as
//     Consul's tls stanza names them), refusing bad ones with the file and
//     the reason, and hands out the configurations of the server port
//     (IncomingConfig, OutgoingConfig: a server of dc must present
//     ServerName(dc, domain) with VerifyServerHostname), of HTTPS, and of
//     WAN links (WANConfig); Reload rereads the files for new
//     connections. NewCA and NewCert make the ECDSA P-256 certificates of
//     `meridian tls`.
//   - Marshal, Unmarshal, NewEncoder and NewDecoder are the one msgpack
//     configuration used for RPC bodies, Raft log entries and snapshots.
//   - Server dispatches streams to handlers registered with Register, from
//     sessions of a TCP listener (ServeListener), a QUIC listener
//     (ServeQUIC) or any Session (ServeSession). Pool is the client side,
//     one session per server address shared by all callers, dialed over
//     yamux by default or by PoolConfig.DialSession (DialQUIC for a Pool
//     of WAN links).
//
// A new QUIC link costs one round trip before the first call is sent (the
// TLS 1.3 handshake rides in QUIC's), as a TCP connection does without any
// encryption; that call then takes one more. 0-RTT is not used: it would
// save a round trip only when reconnecting to a peer seen before, and its
// data can be replayed by an attacker, which forwarded writes must not be.
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
// A subscription (RegisterStream on the server, Pool.Subscribe on the
// client) has a stream of its own: the request frame is a call's, with no
// timeout; the server then sends response frames, one per event, for as
// long as the subscription lasts, and an error frame, or nothing, when it
// ends it. The subscriber ends it by closing the stream. Client agents keep
// their streaming views of watched services this way
// (MethodSubscribeHealth).
//
// Mux, Server, Pool, QUICListener and every Session are safe for concurrent
// use. Encoders
// and decoders returned by NewEncoder and NewDecoder are not.
package rpc
