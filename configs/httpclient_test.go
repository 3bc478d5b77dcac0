package configs

import (
	"strings"
	"testing"
)

func TestHTTPClientTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     []string
		want    ClientTLS
		addr    string
		wantErr string
	}{
		{name: "none", want: ClientTLS{}, addr: "http://127.0.0.1:8500"},
		{name: "consul", env: []string{"CONSUL_HTTP_SSL=true", "CONSUL_CACERT=/ca.pem", "CONSUL_CLIENT_CERT=/c.pem", "CONSUL_CLIENT_KEY=/k.pem", "CONSUL_HTTP_ADDR=127.0.0.1:8501"},
			want: ClientTLS{SSL: true, CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem"}, addr: "https://127.0.0.1:8501"},
		{name: "meridian wins", env: []string{"CONSUL_CACERT=/ca.pem", "MERIDIAN_CACERT=/m.pem", "MERIDIAN_HTTP_SSL_VERIFY=false", "MERIDIAN_TLS_SERVER_NAME=server.dc1.consul"},
			want: ClientTLS{CAFile: "/m.pem", SkipVerify: true, ServerName: "server.dc1.consul"}, addr: "http://127.0.0.1:8500"},
		{name: "bad bool", env: []string{"CONSUL_HTTP_SSL=sure"}, wantErr: `CONSUL_HTTP_SSL="sure": must be true or false`},
		{name: "cert without key", env: []string{"CONSUL_CLIENT_CERT=/c.pem"}, wantErr: "set both or neither"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := HTTPClientTLS(tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("HTTPClientTLS(%q) error = %v, want %q", tc.env, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("HTTPClientTLS(%q) = %+v, %v; want %+v", tc.env, got, err, tc.want)
			}
			if a := HTTPAddr("", tc.env); a != tc.addr {
				t.Errorf("HTTPAddr(%q) = %q, want %q", tc.env, a, tc.addr)
			}
		})
	}
}
