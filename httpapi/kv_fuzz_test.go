package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// FuzzDecodeTxn checks that any /v1/txn body either decodes into at most
// MaxTxnOps valid operations (KV, node, service or check) or is refused with a one-line 400 (413 for
// too many operations).
func FuzzDecodeTxn(f *testing.F) {
	f.Add([]byte(`[{"KV":{"Verb":"set","Key":"a","Value":"eA=="}}]`))
	f.Add([]byte(`[{"KV":{"Verb":"frob","Key":"a"}}]`))
	f.Add([]byte(`[{"KV":{"Verb":"set","Key":"a","Value":"!!"}}]`))
	f.Add([]byte(`[{"Node":{}}]`))
	f.Add([]byte(`[{"Node":{"Verb":"set","Node":{"Node":"n","Address":"1.2.3.4"}}}]`))
	f.Add([]byte(`[{"Service":{"Verb":"get","Node":"n","Service":{"ID":"s"}}},{"Check":{"Verb":"delete","Check":{"Node":"n","CheckID":"c"}}}]`))
	f.Add([]byte(`[{"KV":{"Verb":"get","Key":"a"},"Node":{"Verb":"get","Node":{"Node":"n"}}}]`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := decodeTxn(body)
		if err != nil {
			var br *badRequest
			var tl *tooLarge
			if !errors.As(err, &br) && !errors.As(err, &tl) {
				t.Fatalf("decodeTxn(%q) error %T %v, want badRequest or tooLarge", body, err, err)
			}
			for _, c := range err.Error() {
				if c == '\n' {
					t.Fatalf("decodeTxn(%q) error spans lines: %q", body, err)
				}
			}
			return
		}
		if len(ops) > kvstore.MaxTxnOps {
			t.Fatalf("decodeTxn(%q) accepted %d ops", body, len(ops))
		}
		for i, op := range ops {
			if err := validateTxnOp(op); err != nil {
				t.Fatalf("decodeTxn(%q) accepted invalid op %d: %v", body, i, err)
			}
		}
	})
}

// recordingAgent answers every RPC with success and records KV writes.
type recordingAgent struct {
	Agent
	writes []kvstore.KVRequest
}

func (a *recordingAgent) RPC(_ context.Context, _ string, args, _ any) error {
	if w, ok := args.(*rpc.Write[kvstore.KVRequest]); ok {
		a.writes = append(a.writes, w.Args)
	}
	return nil
}

// FuzzKVPath checks that any key path and query of a PUT either reaches the
// server with a key and a known operation, or is refused with 400.
func FuzzKVPath(f *testing.F) {
	f.Add("a/b/c", "flags=1")
	f.Add("", "cas=x")
	f.Add("%2F%2F", "acquire=&release=")
	f.Add("k", "cas=1&acquire=s")
	f.Add(".", "0") // the mux redirects to the cleaned path
	f.Fuzz(func(t *testing.T, key, query string) {
		u, err := url.Parse("/v1/kv/" + key + "?" + query)
		if err != nil || u.Path != "/v1/kv/"+strings.TrimPrefix(u.Path, "/v1/kv/") {
			return
		}
		a := &recordingAgent{}
		s := New(Config{}, a)
		r := httptest.NewRequest("PUT", "/", nil)
		r.URL, r.RequestURI = u, u.RequestURI()
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		switch {
		case len(a.writes) == 1:
			req := a.writes[0]
			if req.Key == "" {
				t.Fatalf("PUT %q reached the server with an empty key", u)
			}
			switch req.Op {
			case kvstore.VerbSet, kvstore.VerbCAS, kvstore.VerbLock, kvstore.VerbUnlock:
			default:
				t.Fatalf("PUT %q sent op %q", u, req.Op)
			}
			if (req.Op == kvstore.VerbLock || req.Op == kvstore.VerbUnlock) && req.Session == "" {
				t.Fatalf("PUT %q sent %s without a session", u, req.Op)
			}
		case len(a.writes) > 1:
			t.Fatalf("PUT %q sent %d writes", u, len(a.writes))
		case w.Code/100 == 3:
			// The mux redirects an unclean path; the client follows it.
		case w.Code != http.StatusBadRequest:
			t.Fatalf("PUT %q = %d without reaching the server, want 400", u, w.Code)
		}
	})
}
