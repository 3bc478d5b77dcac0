package rpc

import (
	"crypto/tls"
	"fmt"
	"net"
)

// refusal is a connection the Mux closed on purpose, for the reason given.
type refusal struct{ reason string }

func (r *refusal) Error() string { return r.reason }

func refusef(format string, args ...any) error {
	return &refusal{reason: fmt.Sprintf(format, args...)}
}

// unwrapTLS applies the Mux's TLS rules to a connection whose first byte was
// proto: a ProtoTLS connection is handshaken (the peer checked as
// MuxConfig.TLS says) and its first byte inside TLS read; a plain one is
// refused when TLS is configured with VerifyIncoming. It returns the
// connection to hand on and its protocol byte. The caller's read deadline
// bounds the handshake.
func (m *Mux) unwrapTLS(conn net.Conn, proto byte) (net.Conn, byte, error) {
	t := m.cfg.TLS
	if proto != ProtoTLS {
		if t != nil && t.Config().VerifyIncoming {
			return nil, 0, refusef("plain connection refused: verify_incoming requires TLS (first byte %#02x)", proto)
		}
		return conn, proto, nil
	}
	if t == nil || !t.HasCert() {
		return nil, 0, refusef("tls connection refused: this server has no tls certificate configured")
	}
	tc := tls.Server(conn, t.IncomingConfig())
	if err := tc.Handshake(); err != nil {
		return nil, 0, refusef("tls handshake failed: %v", err)
	}
	var b [1]byte
	if _, err := tc.Read(b[:]); err != nil {
		return nil, 0, refusef("no protocol byte after tls handshake: %v", err)
	}
	switch b[0] {
	case ProtoRaft:
		if err := t.CheckServerPeer(tc.ConnectionState()); err != nil {
			return nil, 0, refusef("raft connection refused: %v", err)
		}
	case ProtoTLS:
		return nil, 0, refusef("tls inside tls refused")
	}
	return tc, b[0], nil
}
