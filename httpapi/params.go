package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/meridian/meridian/rpc"
)

// badRequest is an error the client caused; it answers 400 with its text.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error {
	return &badRequest{msg: fmt.Sprintf(format, args...)}
}

// timedOut is a request the client did not finish sending in time; it
// answers 408 with its text.
type timedOut struct{ msg string }

func (e *timedOut) Error() string { return e.msg }

// unsupportedType is a request body of a type the endpoint does not take;
// it answers 415 with its text.
type unsupportedType struct{ msg string }

func (e *unsupportedType) Error() string { return e.msg }

// notFound answers 404 with its text.
type notFound struct{ msg string }

func (e *notFound) Error() string { return e.msg }

// readBody reads a request body of at most limit bytes. A body longer than
// that, declared (Content-Length) or found while reading, answers 413
// before more than limit+1 bytes of it are read.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, bodyTooLarge(r.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		var to *timedOut
		if errors.As(err, &to) {
			return nil, err
		}
		return nil, badf("read request body: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, bodyTooLarge(-1, limit)
	}
	return body, nil
}

// bodyTooLarge is Consul's 413 text; n < 0 when the size is not known.
func bodyTooLarge(n, limit int64) error {
	if n < 0 {
		return &tooLarge{msg: fmt.Sprintf("Request body too large, max size: %d bytes", limit)}
	}
	return &tooLarge{msg: fmt.Sprintf("Request body(%d bytes) too large, max size: %d bytes", n, limit)}
}

// parseQueryOptions reads the parameters every read takes: dc, stale,
// consistent, index, wait (cut to MaxQueryTime) and near (which the
// endpoints that sort by distance read; query resolves "_agent").
func (s *Server) parseQueryOptions(r *http.Request) (rpc.QueryOptions, error) {
	opts, err := parseQueryOptions(r)
	opts.MaxWait = min(opts.MaxWait, s.cfg.MaxQueryTime)
	return opts, err
}

// parseQueryOptions reads the query options as sent, uncapped.
func parseQueryOptions(r *http.Request) (rpc.QueryOptions, error) {
	q := params(r)
	var opts rpc.QueryOptions
	dc, err := parseDC(q)
	if err != nil {
		return opts, err
	}
	opts.Datacenter = dc
	_, opts.AllowStale = q["stale"]
	_, opts.RequireConsistent = q["consistent"]
	opts.Near = q.Get("near")
	opts.Token = requestToken(r)
	if opts.AllowStale && opts.RequireConsistent {
		return opts, badf("stale and consistent are mutually exclusive")
	}
	if v := q.Get("index"); v != "" {
		idx, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return opts, badf("index: %q is not a non-negative integer", v)
		}
		opts.MinIndex = idx
	}
	if v := q.Get("wait"); v != "" {
		d, err := parseWait(v)
		if err != nil {
			return opts, err
		}
		opts.MaxWait = d
	}
	return opts, nil
}

// parseDC reads ?dc=: empty means the local datacenter; a name must be
// something a datacenter could be called.
func parseDC(q url.Values) (string, error) {
	dc := q.Get("dc")
	if dc == "" {
		return "", nil
	}
	if len(dc) > 64 {
		return "", badf("dc: name longer than 64 characters")
	}
	for _, c := range dc {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", badf("dc: %q has a character a datacenter name cannot have", dc)
		}
	}
	return strings.ToLower(dc), nil
}

// parseWait accepts a Go duration ("1500ms", "5m") or bare seconds ("10").
func parseWait(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, badf("wait: %q is not a duration such as 10s or 1500ms", v)
	}
	return d, nil
}

// parseNodeMeta reads repeatable node-meta=key:value parameters.
func parseNodeMeta(q url.Values) (map[string]string, error) {
	vals := q["node-meta"]
	if len(vals) == 0 {
		return nil, nil
	}
	meta := make(map[string]string, len(vals))
	for _, v := range vals {
		k, val, ok := strings.Cut(v, ":")
		if !ok || k == "" {
			return nil, badf("node-meta: %q is not key:value", v)
		}
		meta[k] = val
	}
	return meta, nil
}

// parseBool reads a flag parameter: present without a value, or a value
// strconv.ParseBool accepts.
func parseBool(q url.Values, name string) (bool, error) {
	vs, ok := q[name]
	if !ok {
		return false, nil
	}
	if len(vs) == 0 || vs[0] == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(vs[0])
	if err != nil {
		return false, badf("%s: %q is not a boolean", name, vs[0])
	}
	return b, nil
}

// errorStatus maps an error to its HTTP status and the line to answer.
func errorStatus(err error) (int, string) {
	var br *badRequest
	var nf *notFound
	var tl *tooLarge
	var to *timedOut
	var ut *unsupportedType
	if code, msg, ok := aclStatus(err); ok {
		return code, msg
	}
	switch {
	case errors.As(err, &br):
		return http.StatusBadRequest, br.msg
	case errors.As(err, &to):
		return http.StatusRequestTimeout, to.msg
	case errors.As(err, &ut):
		return http.StatusUnsupportedMediaType, ut.msg
	case errors.As(err, &tl):
		return http.StatusRequestEntityTooLarge, tl.msg
	case errors.As(err, &nf):
		return http.StatusNotFound, nf.msg
	case errors.Is(err, rpc.ErrBadRequest):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, rpc.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, rpc.ErrNoPathToDC):
		return http.StatusInternalServerError, err.Error()
	case errors.Is(err, rpc.ErrNoLeader), errors.Is(err, rpc.ErrTransport), errors.Is(err, rpc.ErrDCUnreachable):
		return http.StatusServiceUnavailable, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}
