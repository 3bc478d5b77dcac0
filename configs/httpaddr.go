package configs

import "strings"

// httpAddrEnv is the variable the CLI commands read the agent's address from.
const httpAddrEnv = "MERIDIAN_HTTP_ADDR"

// HTTPAddr returns the base URL of the agent HTTP API a CLI command talks to:
// flagValue (-http-addr) if set, else MERIDIAN_HTTP_ADDR, else
// CONSUL_HTTP_ADDR from env (os.Environ form), else 127.0.0.1:8500. The
// address may be "host:port" or a URL; the result always has a scheme
// ("http://127.0.0.1:8500", "https://..." also when CONSUL_HTTP_SSL or
// MERIDIAN_HTTP_SSL is true), and no trailing slash.
func HTTPAddr(flagValue string, env []string) string {
	addr := strings.TrimSpace(flagValue)
	for _, name := range []string{httpAddrEnv, "CONSUL_HTTP_ADDR"} {
		if addr != "" {
			break
		}
		addr = strings.TrimSpace(lookupEnv(env, name))
	}
	if addr == "" {
		addr = "127.0.0.1:8500"
	}
	if !strings.Contains(addr, "://") {
		scheme := "http://"
		if t, err := HTTPClientTLS(env); err == nil && t.SSL {
			scheme = "https://"
		}
		addr = scheme + addr
	}
	return strings.TrimRight(addr, "/")
}

// lookupEnv returns the last value of name in env, as os.Getenv would.
func lookupEnv(env []string, name string) string {
	val := ""
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			val = v
		}
	}
	return val
}
