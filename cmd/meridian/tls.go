package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"

	"github.com/meridian/meridian/rpc"
)

// runTLS is `meridian tls ca create` and `meridian tls cert create`, which
// write a CA and certificates under the file names Consul's `consul tls`
// gives them, so existing runbooks and scripts work.
func runTLS(args []string, stdout, stderr io.Writer) int {
	const usage = "Usage: meridian tls ca create [options]\n       meridian tls cert create -server|-client|-cli [options]\n\nCreates a CA and certificates for the agents' TLS (run each with -h for its options).\n"
	if len(args) < 2 || args[1] != "create" || (args[0] != "ca" && args[0] != "cert") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			io.WriteString(stdout, usage)
			return 0
		}
		io.WriteString(stderr, usage)
		return 1
	}
	if args[0] == "ca" {
		return runTLSCACreate(args[2:], stdout, stderr)
	}
	return runTLSCertCreate(args[2:], stdout, stderr)
}

func runTLSCACreate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tls ca create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	domain := fs.String("domain", "consul", "the agents' DNS domain; the files are DOMAIN-agent-ca.pem and DOMAIN-agent-ca-key.pem")
	days := fs.Int("days", 1825, "days the CA is valid for")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: meridian tls ca create [options]\n\nCreates a self-signed CA (ECDSA P-256) in the current directory.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	if *days <= 0 {
		return fail(stderr, "tls ca create", fmt.Errorf("-days %d: must be positive", *days))
	}
	certFile, keyFile := *domain+"-agent-ca.pem", *domain+"-agent-ca-key.pem"
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Stat(f); err == nil {
			return fail(stderr, "tls ca create", fmt.Errorf("%s already exists: not overwriting it (move it away to make a new CA)", f))
		}
	}
	ca, err := rpc.NewCA(*domain, *days)
	if err != nil {
		return fail(stderr, "tls ca create", err)
	}
	if err := writePair(stdout, certFile, keyFile, ca); err != nil {
		return fail(stderr, "tls ca create", err)
	}
	return 0
}

// listFlag collects a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runTLSCertCreate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tls cert create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.Bool("server", false, "create a server certificate (server.DC.DOMAIN)")
	client := fs.Bool("client", false, "create a client agent certificate (client.DC.DOMAIN)")
	cli := fs.Bool("cli", false, "create a certificate for the CLI (cli.client.DC.DOMAIN)")
	dc := fs.String("dc", "dc1", "datacenter of the certificate")
	domain := fs.String("domain", "consul", "the agents' DNS domain")
	days := fs.Int("days", 365, "days the certificate is valid for")
	caFile := fs.String("ca", "#DOMAIN#-agent-ca.pem", "the CA certificate")
	caKey := fs.String("key", "#DOMAIN#-agent-ca-key.pem", "the CA key")
	var dnsNames, ips listFlag
	fs.Var(&dnsNames, "additional-dnsname", "another DNS name for the certificate (repeatable); localhost is always included")
	fs.Var(&ips, "additional-ipaddress", "another IP address for the certificate (repeatable); 127.0.0.1 is always included for servers and clients")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: meridian tls cert create -server|-client|-cli [options]\n\nCreates a certificate signed by the CA, in the current directory, as DC-KIND-DOMAIN-N.pem and DC-KIND-DOMAIN-N-key.pem (N the next free number).\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	var kinds []string
	for _, k := range []struct {
		set  bool
		kind string
	}{{*server, rpc.CertServer}, {*client, rpc.CertClient}, {*cli, rpc.CertCLI}} {
		if k.set {
			kinds = append(kinds, k.kind)
		}
	}
	if len(kinds) != 1 {
		return fail(stderr, "tls cert create", errors.New("give exactly one of -server, -client and -cli"))
	}
	if *days <= 0 {
		return fail(stderr, "tls cert create", fmt.Errorf("-days %d: must be positive", *days))
	}
	req := rpc.CertRequest{Kind: kinds[0], Datacenter: *dc, Domain: *domain, Days: *days, DNSNames: dnsNames}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return fail(stderr, "tls cert create", fmt.Errorf("-additional-ipaddress %q: not an IP address", s))
		}
		req.IPs = append(req.IPs, ip)
	}
	caPath := strings.ReplaceAll(*caFile, "#DOMAIN#", *domain)
	keyPath := strings.ReplaceAll(*caKey, "#DOMAIN#", *domain)
	var ca rpc.PEMPair
	var err error
	if ca.Cert, err = os.ReadFile(caPath); err != nil {
		return fail(stderr, "tls cert create", fmt.Errorf("read ca %s (make one with meridian tls ca create, or set -ca): %w", caPath, unwrapPath(err)))
	}
	if ca.Key, err = os.ReadFile(keyPath); err != nil {
		return fail(stderr, "tls cert create", fmt.Errorf("read ca key %s (set -key): %w", keyPath, unwrapPath(err)))
	}
	pair, err := rpc.NewCert(ca, req)
	if err != nil {
		return fail(stderr, "tls cert create", fmt.Errorf("%s with %s: %w", caPath, keyPath, err))
	}
	if kinds[0] == rpc.CertServer {
		fmt.Fprintln(stdout, "==> WARNING: Server Certificates grants authority to become a\n    server and access all state in the cluster including root keys\n    and all ACL tokens. Do not distribute them to production hosts\n    that are not server nodes. Store them as securely as CA keys.")
	}
	fmt.Fprintf(stdout, "==> Using %s and %s\n", caPath, keyPath)
	for n := 0; ; n++ {
		base := fmt.Sprintf("%s-%s-%s-%d", *dc, kinds[0], *domain, n)
		certFile, keyFile := base+".pem", base+"-key.pem"
		if exists(certFile) || exists(keyFile) {
			continue
		}
		if err := writePair(stdout, certFile, keyFile, pair); err != nil {
			return fail(stderr, "tls cert create", err)
		}
		return 0
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// unwrapPath drops the path from a *fs.PathError, which the message names.
func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// writePair writes a certificate (mode 0644) and its key (0600), refusing
// to replace a file that exists.
func writePair(stdout io.Writer, certFile, keyFile string, p rpc.PEMPair) error {
	if err := writeNew(certFile, p.Cert, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "==> Saved %s\n", certFile)
	if err := writeNew(keyFile, p.Key, 0o600); err != nil {
		os.Remove(certFile)
		return err
	}
	fmt.Fprintf(stdout, "==> Saved %s\n", keyFile)
	return nil
}

// writeNew creates path with data; it fails if path exists.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists: not overwriting it", path)
		}
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
