package configs

import (
	"fmt"
	"strconv"
	"strings"
)

// ClientTLS is how a CLI command reaches an agent's HTTPS API, from the
// environment variables the Consul CLI reads (CONSUL_HTTP_SSL,
// CONSUL_CACERT, ...) or their MERIDIAN_ equivalents, which win.
type ClientTLS struct {
	// SSL makes an address without a scheme https://.
	SSL bool
	// CAFile and CAPath are the CAs the agent's certificate must chain to;
	// empty: the system's.
	CAFile, CAPath string
	// CertFile and KeyFile are the client certificate, for an agent with
	// verify_incoming on HTTPS.
	CertFile, KeyFile string
	// SkipVerify does not check the agent's certificate
	// (CONSUL_HTTP_SSL_VERIFY=false).
	SkipVerify bool
	// ServerName is the name to verify instead of the address's host
	// (CONSUL_TLS_SERVER_NAME).
	ServerName string
}

// clientEnv lists the variables of ClientTLS, without prefix; they are read
// by the CLI, so the agent does not warn about the MERIDIAN_ ones.
var clientEnv = []string{"HTTP_SSL", "CACERT", "CAPATH", "CLIENT_CERT", "CLIENT_KEY", "HTTP_SSL_VERIFY", "TLS_SERVER_NAME"}

// isClientEnv reports whether name is a MERIDIAN_ variable of the CLI.
func isClientEnv(name string) bool {
	if name == httpAddrEnv {
		return true
	}
	for _, n := range clientEnv {
		if name == envPrefix+n {
			return true
		}
	}
	return false
}

// HTTPClientTLS reads ClientTLS from env (os.Environ form). A boolean that
// does not parse is an error naming the variable.
func HTTPClientTLS(env []string) (ClientTLS, error) {
	get := func(name string) (string, string) {
		for _, p := range []string{envPrefix, "CONSUL_"} {
			if v := strings.TrimSpace(lookupEnv(env, p+name)); v != "" {
				return v, p + name
			}
		}
		return "", ""
	}
	boolean := func(name string, def bool) (bool, error) {
		v, full := get(name)
		if v == "" {
			return def, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("%s=%q: must be true or false", full, v)
		}
		return b, nil
	}
	var c ClientTLS
	var err error
	if c.SSL, err = boolean("HTTP_SSL", false); err != nil {
		return c, err
	}
	verify, err := boolean("HTTP_SSL_VERIFY", true)
	if err != nil {
		return c, err
	}
	c.SkipVerify = !verify
	c.CAFile, _ = get("CACERT")
	c.CAPath, _ = get("CAPATH")
	c.CertFile, _ = get("CLIENT_CERT")
	c.KeyFile, _ = get("CLIENT_KEY")
	c.ServerName, _ = get("TLS_SERVER_NAME")
	if (c.CertFile == "") != (c.KeyFile == "") {
		return c, fmt.Errorf("CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY (or MERIDIAN_) go together: set both or neither")
	}
	return c, nil
}
