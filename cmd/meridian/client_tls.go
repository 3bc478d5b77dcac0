package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/meridian/meridian/configs"
)

// cliTransport is the HTTP transport of the CLI commands: the agent's HTTPS
// certificate checked against CONSUL_CACERT/CONSUL_CAPATH (or the
// MERIDIAN_ ones) and a client certificate from CONSUL_CLIENT_CERT and
// CONSUL_CLIENT_KEY. When those cannot be loaded, every request fails with
// the reason, so the command prints it.
func cliTransport(env []string) http.RoundTripper {
	tc, err := cliTLS(env)
	if err != nil {
		return failingTransport{err}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	return t
}

// cliTLS builds the TLS configuration from the environment.
func cliTLS(env []string) (*tls.Config, error) {
	ct, err := configs.HTTPClientTLS(env)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: ct.ServerName, InsecureSkipVerify: ct.SkipVerify}
	if ct.CAFile != "" || ct.CAPath != "" {
		roots := x509.NewCertPool()
		files := []string{}
		if ct.CAFile != "" {
			files = append(files, ct.CAFile)
		}
		if ct.CAPath != "" {
			matches, _ := filepath.Glob(filepath.Join(ct.CAPath, "*.pem"))
			crts, _ := filepath.Glob(filepath.Join(ct.CAPath, "*.crt"))
			files = append(files, append(matches, crts...)...)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("CONSUL_CACERT: %w", err)
			}
			if !roots.AppendCertsFromPEM(data) {
				return nil, fmt.Errorf("CONSUL_CACERT %s: not PEM: no certificate found", f)
			}
		}
		tc.RootCAs = roots
	}
	if ct.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(ct.CertFile, ct.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("CONSUL_CLIENT_CERT %s with CONSUL_CLIENT_KEY %s: %w", ct.CertFile, ct.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// failingTransport answers every request with err.
type failingTransport struct{ err error }

func (f failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("https settings: %w", f.err)
}
