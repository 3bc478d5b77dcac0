package httpapi

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeQuery checks that any /v1/query body either decodes into a
// definition or is refused with a one-line 400.
func FuzzDecodeQuery(f *testing.F) {
	f.Add([]byte(`{"Name":"web","Service":{"Service":"web","Failover":{"NearestN":1,"Datacenters":["dc2"]}}}`))
	f.Add([]byte(`{"name":"x","service":{"service":"web","only_passing":true,"node_meta":{"a_b":"c"},"service_meta":{"x_y":"z"}}}`))
	f.Add([]byte(`{"Template":{"Type":"name_prefix_match","Regexp":"^(.*)$"},"Service":{"Service":"${match(1)}"}}`))
	f.Add([]byte(`{"Bogus":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/v1/query", bytes.NewReader(body))
		if _, err := decodeQuery(r); err != nil {
			var br *badRequest
			if !errors.As(err, &br) {
				t.Fatalf("decodeQuery(%q) error %T %v, want badRequest", body, err, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("decodeQuery(%q) error spans lines: %q", body, err)
			}
		}
	})
}

func TestDecodeQueryKeys(t *testing.T) {
	body := `{"name":"x","service":{"service":"web","only_passing":true,"ignore_check_ids":["c"],"failover":{"nearest_n":2},"node_meta":{"a_b":"c"},"service_meta":{"x_y":"z"}},"dns":{"ttl":"5s"}}`
	q, err := decodeQuery(httptest.NewRequest("POST", "/v1/query", strings.NewReader(body)))
	if err != nil {
		t.Fatalf("decodeQuery = %v", err)
	}
	s := q.Service
	if q.Name != "x" || s.Service != "web" || !s.OnlyPassing || len(s.IgnoreCheckIDs) != 1 || s.Failover.NearestN != 2 ||
		s.NodeMeta["a_b"] != "c" || s.ServiceMeta["x_y"] != "z" || q.DNS.TTL != "5s" {
		t.Errorf("decodeQuery(snake_case) = %+v", q)
	}
}
