package agent

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/rpc"
)

// setupTLS loads the certificates of the server port and of HTTPS. A bad
// file stops the start with the file and the reason.
func (a *Agent) setupTLS() error {
	var err error
	if a.rpcTLS, err = a.newConfigurator(a.cfg.InternalRPCTLS()); err != nil {
		return fmt.Errorf("tls.internal_rpc: %w", err)
	}
	if a.cfg.Ports.HTTPS >= 0 {
		if a.httpsTLS, err = a.newConfigurator(a.cfg.HTTPSTLS()); err != nil {
			return fmt.Errorf("tls.https: %w", err)
		}
	}
	return nil
}

// newConfigurator is nil when s names no file at all.
func (a *Agent) newConfigurator(s configs.TLSSettings) (*rpc.TLSConfigurator, error) {
	if !s.Enabled() && !s.Verifies() {
		return nil, nil
	}
	return rpc.NewTLSConfigurator(rpc.TLSConfig{
		CAFile: s.CAFile, CAPath: s.CAPath, CertFile: s.CertFile, KeyFile: s.KeyFile,
		VerifyIncoming: s.VerifyIncoming, VerifyOutgoing: s.VerifyOutgoing, VerifyServerHostname: s.VerifyServerHostname,
		MinVersion: s.MinVersion, CipherSuites: s.CipherSuites,
		Datacenter: a.cfg.Datacenter, Domain: strings.TrimSuffix(a.cfg.Domain, "."),
		Server: a.cfg.Server,
	})
}

// reloadTLS rereads the certificate files; new connections use them. A file
// that fails keeps the old certificates, and the log says why.
func (a *Agent) reloadTLS() {
	for _, c := range []struct {
		name string
		tls  *rpc.TLSConfigurator
	}{{"internal_rpc", a.rpcTLS}, {"https", a.httpsTLS}} {
		if c.tls == nil {
			continue
		}
		if err := c.tls.Reload(); err != nil {
			a.logger.Error("tls certificates not reloaded, the old ones stay in use", "tls", c.name, "error", err)
			continue
		}
		a.logger.Info("tls certificates reloaded", "tls", c.name)
	}
}

// wanLinkTLS is the TLS of WAN links from the server port's certificates
// (accepting side, and a function for each datacenter dialed), or nils
// when they have no certificate and CA.
func (a *Agent) wanLinkTLS() (*tls.Config, func(dc string) *tls.Config) {
	if a.rpcTLS == nil || !a.rpcTLS.HasCert() || !a.cfg.InternalRPCTLS().Verifies() {
		return nil, nil
	}
	return a.rpcTLS.WANConfig(""), a.rpcTLS.WANConfig
}

// listenHTTPS starts the HTTPS API on ports.https, when set.
func (a *Agent) listenHTTPS() error {
	if a.httpsTLS == nil {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.cfg.BindHTTPS(), strconv.Itoa(a.cfg.Ports.HTTPS)))
	if err != nil {
		return fmt.Errorf("https api: %w", err)
	}
	a.httpsLn = ln
	tl := tls.NewListener(ln, a.httpsTLS.IncomingConfig())
	a.goFunc(func() {
		if err := a.http.Serve(tl); err != nil {
			a.logger.Error("https api stopped", "error", err)
		}
	})
	return nil
}

// HTTPSAddr is the address the HTTPS API listens on, empty when it is off.
func (a *Agent) HTTPSAddr() string {
	if a.httpsLn == nil {
		return ""
	}
	return a.httpsLn.Addr().String()
}
