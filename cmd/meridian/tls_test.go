package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"strings"
	"testing"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: not PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// TestTLSCreate runs `meridian tls ca create` and `tls cert create` as a
// Consul runbook would and checks the files: Consul's names, the next free
// number, keys 0600, the SANs, certificates that verify against the CA, and
// no file overwritten.
func TestTLSCreate(t *testing.T) {
	t.Chdir(t.TempDir())
	runOK := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("meridian %s = %d, stderr %q", strings.Join(args, " "), code, errb.String())
		}
		return out.String()
	}
	out := runOK("tls", "ca", "create")
	if !strings.Contains(out, "Saved consul-agent-ca.pem") || !strings.Contains(out, "Saved consul-agent-ca-key.pem") {
		t.Errorf("tls ca create printed %q", out)
	}
	runOK("tls", "cert", "create", "-server", "-dc", "dc1")
	runOK("tls", "cert", "create", "-server", "-dc", "dc1", "-additional-dnsname", "srv.example.com", "-additional-ipaddress", "10.0.0.5")
	runOK("tls", "cert", "create", "-client")
	runOK("tls", "cert", "create", "-cli")

	roots := x509.NewCertPool()
	ca := readCert(t, "consul-agent-ca.pem")
	if !ca.IsCA {
		t.Fatal("consul-agent-ca.pem is not a CA")
	}
	roots.AddCert(ca)
	for _, tc := range []struct {
		file  string
		dns   []string
		ips   []string
		usage x509.ExtKeyUsage
	}{
		{"dc1-server-consul-0", []string{"server.dc1.consul", "localhost"}, []string{"127.0.0.1"}, x509.ExtKeyUsageServerAuth},
		{"dc1-server-consul-1", []string{"server.dc1.consul", "localhost", "srv.example.com"}, []string{"127.0.0.1", "10.0.0.5"}, x509.ExtKeyUsageServerAuth},
		{"dc1-client-consul-0", []string{"client.dc1.consul", "localhost"}, []string{"127.0.0.1"}, x509.ExtKeyUsageClientAuth},
		{"dc1-cli-consul-0", []string{"cli.client.dc1.consul", "localhost"}, nil, x509.ExtKeyUsageClientAuth},
	} {
		c := readCert(t, tc.file+".pem")
		if !slices.Equal(c.DNSNames, tc.dns) {
			t.Errorf("%s DNSNames = %v, want %v", tc.file, c.DNSNames, tc.dns)
		}
		var ips []string
		for _, ip := range c.IPAddresses {
			ips = append(ips, ip.String())
		}
		if !slices.Equal(ips, tc.ips) {
			t.Errorf("%s IPs = %v, want %v", tc.file, ips, tc.ips)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{tc.usage}}); err != nil {
			t.Errorf("%s does not verify against the CA: %v", tc.file, err)
		}
		st, err := os.Stat(tc.file + "-key.pem")
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s-key.pem mode %v, want 0600", tc.file, st.Mode().Perm())
		}
	}

	before, _ := os.ReadFile("consul-agent-ca-key.pem")
	var out2, errb bytes.Buffer
	if code := run([]string{"tls", "ca", "create"}, &out2, &errb); code == 0 || !strings.Contains(errb.String(), "consul-agent-ca.pem already exists") {
		t.Errorf("second tls ca create = %d, stderr %q; want a refusal naming the file", code, errb.String())
	}
	if after, _ := os.ReadFile("consul-agent-ca-key.pem"); !bytes.Equal(before, after) {
		t.Error("second tls ca create changed the CA key")
	}
}

// TestTLSCreateBadInput: each mistake is one line saying what to do.
func TestTLSCreateBadInput(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tls", "cert", "create", "-server"}, "meridian tls ca create"},
		{[]string{"tls", "cert", "create"}, "exactly one of -server, -client and -cli"},
		{[]string{"tls", "cert", "create", "-client", "-server"}, "exactly one of"},
		{[]string{"tls", "cert", "create", "-server", "-additional-ipaddress", "nope"}, `"nope": not an IP address`},
		{[]string{"tls", "ca", "create", "-days", "0"}, "-days 0: must be positive"},
		{[]string{"tls", "frob"}, "Usage: meridian tls"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("meridian %s = %d, stderr %q; want it to contain %q", strings.Join(tc.args, " "), code, errb.String(), tc.want)
		}
	}
}
