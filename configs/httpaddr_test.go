package configs

import "testing"

func TestHTTPAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		flag string
		env  []string
		want string
	}{
		{"default", "", nil, "http://127.0.0.1:8500"},
		{"flag host:port", "10.0.0.1:8501", []string{"MERIDIAN_HTTP_ADDR=x:1"}, "http://10.0.0.1:8501"},
		{"flag URL", "https://agent.example:8501/", nil, "https://agent.example:8501"},
		{"meridian env", "", []string{"MERIDIAN_HTTP_ADDR=10.0.0.2:8500", "CONSUL_HTTP_ADDR=10.0.0.3:8500"}, "http://10.0.0.2:8500"},
		{"consul env", "", []string{"CONSUL_HTTP_ADDR=http://10.0.0.3:8500"}, "http://10.0.0.3:8500"},
		{"empty env is unset", "", []string{"MERIDIAN_HTTP_ADDR=", "CONSUL_HTTP_ADDR=10.0.0.3:8500"}, "http://10.0.0.3:8500"},
		{"ipv6", "[::1]:8500", nil, "http://[::1]:8500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := HTTPAddr(tc.flag, tc.env); got != tc.want {
				t.Errorf("HTTPAddr(%q, %q) = %q, want %q", tc.flag, tc.env, got, tc.want)
			}
		})
	}
}
