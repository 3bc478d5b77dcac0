package httpapi

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/hashicorp/go-bexpr"
)

// parseFilter compiles ?filter=, Consul's filter expression language
// (`Service.Tags contains "v2" and Node.Meta.rack == "r1"`), or returns nil
// when there is none. Field names are those of the JSON answer.
func parseFilter(q url.Values) (*bexpr.Filter, error) {
	expr := q.Get("filter")
	if expr == "" {
		return nil, nil
	}
	f, err := bexpr.CreateFilter(expr)
	if err != nil {
		return nil, badf("filter: %v", err)
	}
	return f, nil
}

// withFilter applies the request's ?filter= to v, an answer computed
// without one.
func withFilter[V any](r *http.Request, v V) (V, error) {
	f, err := parseFilter(params(r))
	if err != nil || f == nil {
		return v, err
	}
	return applyFilter(f, v)
}

// applyFilter keeps the elements of a list or map answer that match.
func applyFilter[V any](f *bexpr.Filter, v V) (V, error) {
	out, err := f.Execute(v)
	if err != nil {
		var zero V
		return zero, badf("filter: %v", err)
	}
	typed, ok := out.(V)
	if !ok {
		var zero V
		return zero, fmt.Errorf("filter returned %T, want %T", out, zero)
	}
	return typed, nil
}
