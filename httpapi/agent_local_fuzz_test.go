package httpapi

import (
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeServiceDefinition feeds arbitrary bodies to the register
// decoder: it never panics, refuses with one line that is a 400, and what
// it accepts has a name and sane durations.
func FuzzDecodeServiceDefinition(f *testing.F) {
	for _, seed := range []string{
		`{"Name":"web","Port":8080,"Tags":["a"],"Check":{"HTTP":"http://127.0.0.1/","Interval":"10s"}}`,
		`{"name":"web","meta":{"Some_Key":"v"},"checks":[{"ttl":"15s","deregister_critical_service_after":"1m"}]}`,
		`{"Name":"x","Check":{"TTL":"soon"}}`,
		`{"Name":"x","Check":{"TTL":1000000000}}`,
		`{"Name":"x","Weights":{"Passing":3,"Warning":1},"Checks":[null,{"Args":["true"],"Interval":"1s"}]}`,
		`[]`, `{`, ``, `{"Name":5}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		def, err := DecodeServiceDefinition(body)
		if err != nil {
			var br *badRequest
			if !errors.As(err, &br) {
				t.Fatalf("DecodeServiceDefinition(%q) error %v is not a bad request", body, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("DecodeServiceDefinition(%q) error %q is not one line", body, err)
			}
			return
		}
		if def.Name == "" {
			t.Fatalf("DecodeServiceDefinition(%q) accepted a service without a name", body)
		}
		for _, c := range def.Checks {
			if c.TTL < 0 || c.Interval < 0 || c.Timeout < 0 || c.DeregisterCriticalServiceAfter < 0 {
				t.Fatalf("DecodeServiceDefinition(%q) accepted a negative duration: %+v", body, c)
			}
		}
	})
}

func TestDecodeServiceDefinitionKeys(t *testing.T) {
	def, err := DecodeServiceDefinition([]byte(`{"name":"web","id":"web-1","enable_tag_override":true,"meta":{"Some_Key":"v"},
		"check":{"check_id":"c1","ttl":"15s","deregister_critical_service_after":"1m","script_args":["x"]}}`))
	if err != nil {
		t.Fatalf("DecodeServiceDefinition: %v", err)
	}
	if def.Name != "web" || def.ID != "web-1" || !def.EnableTagOverride || def.Meta["Some_Key"] != "v" {
		t.Errorf("service = %+v, want name, id, enable_tag_override and the meta key kept as written", def)
	}
	if len(def.Checks) != 1 {
		t.Fatalf("checks = %+v, want one", def.Checks)
	}
	c := def.Checks[0]
	if c.ID != "c1" || c.TTL.String() != "15s" || c.DeregisterCriticalServiceAfter.String() != "1m0s" || len(c.Args) != 1 {
		t.Errorf("check = %+v, want c1, 15s, 1m, script_args", c)
	}
}
