package agent_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/agent"
)

// TestLocalRefusesBadInput checks that each bad registration answers 400
// (404 for an unknown check) with one line naming the field, and leaves the
// local state as it was.
func TestLocalRefusesBadInput(t *testing.T) {
	a, c := localAgent(t, nil, agent.Options{})
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "w1", Name: "web", Check: &api.AgentServiceCheck{TTL: "1m"}}); err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	before, _ := c.Agent().Services()
	beforeChecks, _ := c.Agent().Checks()

	tests := []struct {
		name, path, body string
		wantCode         int
		want             string // substring of the one-line answer
	}{
		{"malformed JSON", "/v1/agent/service/register", `{"Name": "x",`, 400, "malformed JSON"},
		{"wrong type", "/v1/agent/service/register", `{"Name": "x", "Port": "eighty"}`, 400, "Port"},
		{"no name", "/v1/agent/service/register", `{"Port": 80}`, 400, "Name"},
		{"unknown check type", "/v1/agent/service/register", `{"Name": "x", "Check": {"GRPC": "127.0.0.1:1", "Interval": "10s"}}`, 400, "GRPC"},
		{"check of no kind", "/v1/agent/service/register", `{"Name": "x", "Check": {"Interval": "10s"}}`, 400, "unknown check type"},
		{"http without interval", "/v1/agent/service/register", `{"Name": "x", "Check": {"HTTP": "http://127.0.0.1:1/"}}`, 400, "Interval"},
		{"tcp without interval", "/v1/agent/service/register", `{"Name": "x", "Checks": [{"TTL": "1m"}, {"TCP": "127.0.0.1:1"}]}`, 400, "Checks[1].Interval"},
		{"ttl not a duration", "/v1/agent/service/register", `{"Name": "x", "Check": {"TTL": "soon"}}`, 400, "Check.TTL"},
		{"snake_case ttl not a duration", "/v1/agent/service/register", `{"name": "x", "check": {"ttl": "soon"}}`, 400, "TTL"},
		{"script checks disabled", "/v1/agent/service/register", `{"Name": "x", "Check": {"Args": ["true"], "Interval": "1s"}}`, 400, "Args"},
		{"service ID collides", "/v1/agent/service/register", `{"ID": "w1", "Name": "other", "Check": {"TTL": "1m"}}`, 400, "ID"},
		{"bad status", "/v1/agent/service/register", `{"Name": "x", "Check": {"TTL": "1m", "Status": "fine"}}`, 400, "Status"},
		{"check for unknown service", "/v1/agent/check/register", `{"Name": "c", "ServiceID": "nope", "TTL": "1m"}`, 400, "ServiceID"},
		{"check without name", "/v1/agent/check/register", `{"TTL": "1m"}`, 400, "Name"},
		{"pass unknown check", "/v1/agent/check/pass/nope", ``, 404, "nope"},
		{"update with bad status", "/v1/agent/check/update/service:w1", `{"Status": "meh"}`, 400, "Status"},
		{"deregister unknown service", "/v1/agent/service/deregister/nope", ``, 404, "nope"},
		{"maintenance without enable", "/v1/agent/service/maintenance/w1", ``, 400, "enable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPut, "http://"+a.HTTPAddr()+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("PUT %s: %v", tc.path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			msg := strings.TrimSuffix(string(body), "\n")
			if resp.StatusCode != tc.wantCode || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("PUT %s %s = %d %q, want %d and one line containing %q", tc.path, tc.body, resp.StatusCode, msg, tc.wantCode, tc.want)
			}
			after, _ := c.Agent().Services()
			afterChecks, _ := c.Agent().Checks()
			if len(after) != len(before) || after["w1"].Service != "web" || len(afterChecks) != len(beforeChecks) {
				t.Errorf("after a refused request: services %v, checks %v; want them unchanged", after, afterChecks)
			}
		})
	}
}
