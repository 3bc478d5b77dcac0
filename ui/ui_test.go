package ui

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
)

// maxSize is the budget of the assets, uncompressed (issue 15).
const maxSize = 200 * 1024

func TestEveryAssetServed(t *testing.T) {
	t.Parallel()
	h, err := New("/ui/")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var files []string
	err = fs.WalkDir(embedded, "assets", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimPrefix(p, "assets/"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Assets(); strings.Join(got, ",") != strings.Join(files, ",") {
		t.Fatalf("Assets() = %v, want every embedded file %v", got, files)
	}
	if h.Size() > maxSize {
		t.Errorf("assets are %d bytes, over the %d budget", h.Size(), maxSize)
	}
	t.Logf("%d assets, %d bytes uncompressed", len(files), h.Size())
	index := string(h.assets["index.html"].body)
	for _, name := range files {
		want, _ := fs.ReadFile(embedded, "assets/"+name)
		if name == "index.html" {
			want = h.assets[name].body
		} else if v := name + "?v=" + h.assets[name].version; !strings.Contains(index, v) {
			t.Errorf("index.html does not name %s (its import map or a link), want it to", v)
		}
		req := httptest.NewRequest("GET", "/ui/"+name, nil)
		req.Header.Set("Accept-Encoding", "br, gzip;q=0.8")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode != 200 {
			t.Errorf("GET /ui/%s = %d, want 200", name, res.StatusCode)
			continue
		}
		if ct := res.Header.Get("Content-Type"); ct != contentTypes[path.Ext(name)] || ct == "" {
			t.Errorf("GET /ui/%s Content-Type = %q, want %q", name, ct, contentTypes[path.Ext(name)])
		}
		if res.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("GET /ui/%s Content-Encoding = %q, want gzip", name, res.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Errorf("GET /ui/%s: body is not gzip: %v", name, err)
			continue
		}
		got, _ := io.ReadAll(zr)
		if !bytes.Equal(got, want) {
			t.Errorf("GET /ui/%s: gunzipped body differs from the embedded file", name)
		}
		etag := res.Header.Get("ETag")
		if len(etag) < 10 || res.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET /ui/%s ETag = %q, Cache-Control = %q, want a content hash and no-cache", name, etag, res.Header.Get("Cache-Control"))
		}
		req = httptest.NewRequest("GET", "/ui/"+name+"?v="+h.assets[name].version, nil)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if cc := rec.Header().Get("Cache-Control"); rec.Code != 200 || !strings.Contains(cc, "immutable") {
			t.Errorf("GET /ui/%s?v=its hash = %d, Cache-Control %q, want 200 and immutable", name, rec.Code, cc)
		}
		req = httptest.NewRequest("GET", "/ui/"+name, nil)
		req.Header.Set("If-None-Match", etag)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Errorf("GET /ui/%s If-None-Match its ETag = %d with %d bytes, want 304 and none", name, rec.Code, rec.Body.Len())
		}
	}
}

func TestServe(t *testing.T) {
	t.Parallel()
	h, err := New("/console/")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	index := h.assets["index.html"].body
	tests := []struct {
		name, method, path, accept string
		code                       int
		body                       []byte
		encoding                   string
	}{
		{"index at the prefix", "GET", "/console/", "", 200, index, ""},
		{"index by name", "GET", "/console/index.html", "gzip;q=0", 200, index, ""},
		{"head", "HEAD", "/console/", "gzip", 200, nil, "gzip"},
		{"unknown asset", "GET", "/console/nope.js", "", 404, nil, ""},
		{"outside the prefix", "GET", "/ui/", "", 404, nil, ""},
		{"write", "PUT", "/console/", "", 405, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.accept != "" {
				req.Header.Set("Accept-Encoding", tc.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.code)
			}
			if tc.body != nil && !bytes.Equal(rec.Body.Bytes(), tc.body) {
				t.Errorf("%s %s body = %.60q..., want the asset", tc.method, tc.path, rec.Body.String())
			}
			if got := rec.Header().Get("Content-Encoding"); got != tc.encoding {
				t.Errorf("%s %s Content-Encoding = %q, want %q", tc.method, tc.path, got, tc.encoding)
			}
			if tc.method == "HEAD" && rec.Body.Len() != 0 {
				t.Errorf("HEAD %s wrote %d bytes", tc.path, rec.Body.Len())
			}
		})
	}
	if _, err := New("ui"); err == nil {
		t.Errorf(`New("ui") error = nil, want one: a prefix starts and ends with '/'`)
	}
}

// TestNothingFromElsewhere checks that the assets name no other origin
// (the Content-Security-Policy refuses one at run time too) and that the
// only request the pages make is api.js's fetch of /v1/.
func TestNothingFromElsewhere(t *testing.T) {
	t.Parallel()
	err := fs.WalkDir(embedded, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, _ := fs.ReadFile(embedded, p)
		text := string(body)
		for _, bad := range []string{"http://", "https://", "//cdn", "XMLHttpRequest", "WebSocket", "EventSource", "import(", "@import"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s contains %q: the UI loads nothing from anywhere but the agent, and only through api.js", p, bad)
			}
		}
		if n := strings.Count(text, "fetch("); n > 0 && p != "assets/api.js" {
			t.Errorf("%s calls fetch %d times: requests go through api.js", p, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
