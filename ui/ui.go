package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strings"
)

//go:embed assets
var embedded embed.FS

// contentTypes maps the extensions of the assets to their content types;
// an asset of any other extension makes New fail, so a new kind of file is
// a decision, not whatever the host's mime table says.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// csp allows the pages nothing but the agent that served them.
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	contentType string
	body        []byte
	gzipped     []byte
	etag        string // "hash"
	version     string // the ?v= that names this content
}

// Handler serves the embedded UI under a path prefix.
type Handler struct {
	prefix string
	assets map[string]*asset
	size   int
	csp    string
}

// importMapMarker is the line of index.html that New replaces with the
// import map.
const importMapMarker = "<!-- importmap: the handler puts here the import map that names each module with its content hash -->"

// assetRef is a reference from index.html to another asset.
var assetRef = regexp.MustCompile(`(href|src)="([a-z0-9_-]+\.(?:js|css))"`)

// New returns the handler that serves the UI under prefix, which starts and
// ends with '/' (the request path with prefix cut off names the asset; the
// prefix alone is index.html).
func New(prefix string) (*Handler, error) {
	if !strings.HasPrefix(prefix, "/") || !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("ui prefix %q: must start and end with '/'", prefix)
	}
	h := &Handler{prefix: prefix, assets: make(map[string]*asset)}
	root, err := fs.Sub(embedded, "assets")
	if err != nil {
		return nil, fmt.Errorf("ui assets: %w", err)
	}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("asset %s: no content type for %q", name, path.Ext(name))
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		h.assets[name] = newAsset(ct, body)
		h.size += len(body)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui assets: %w", err)
	}
	if err := h.versionIndex(); err != nil {
		return nil, fmt.Errorf("ui assets: %w", err)
	}
	return h, nil
}

func newAsset(contentType string, body []byte) *asset {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = zw.Write(body) // a bytes.Buffer does not fail
	_ = zw.Close()
	sum := sha256.Sum256(body)
	v := hex.EncodeToString(sum[:8])
	return &asset{contentType: contentType, body: body, gzipped: gz.Bytes(), etag: `"` + v + `"`, version: v}
}

// versionIndex rewrites index.html so that every asset it loads, and every
// module a module imports (through an import map), is named with its
// content hash (app.js?v=HASH): those URLs are cached for a year, so a
// browser revalidates only index.html, and a new binary's index.html names
// new URLs. The page's Content-Security-Policy allows the import map by
// its hash.
func (h *Handler) versionIndex() error {
	index := h.assets["index.html"]
	if index == nil {
		return fmt.Errorf("index.html is missing")
	}
	html := string(index.body)
	if !strings.Contains(html, importMapMarker) {
		return fmt.Errorf("index.html has no import map marker")
	}
	imports := map[string]string{}
	for name, a := range h.assets {
		if strings.HasSuffix(name, ".js") {
			imports["./"+name] = "./" + name + "?v=" + a.version
		}
	}
	js, err := json.Marshal(map[string]any{"imports": imports})
	if err != nil {
		return fmt.Errorf("import map: %w", err)
	}
	var missing []string
	html = assetRef.ReplaceAllStringFunc(html, func(ref string) string {
		m := assetRef.FindStringSubmatch(ref)
		a := h.assets[m[2]]
		if a == nil {
			missing = append(missing, m[2])
			return ref
		}
		return m[1] + `="` + m[2] + "?v=" + a.version + `"`
	})
	if len(missing) > 0 {
		return fmt.Errorf("index.html loads %v, which are not embedded", missing)
	}
	sum := sha256.Sum256(js)
	html = strings.Replace(html, importMapMarker, `<script type="importmap">`+string(js)+`</script>`, 1)
	h.csp = strings.Replace(csp, "script-src 'self'", "script-src 'self' 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'", 1)
	h.assets["index.html"] = newAsset(index.contentType, []byte(html))
	h.size += len(html) - len(index.body)
	return nil
}

// Assets lists the names of the embedded assets, sorted, as paths under the
// prefix.
func (h *Handler) Assets() []string {
	names := make([]string, 0, len(h.assets))
	for name := range h.assets {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Size is the total size of the assets in bytes, uncompressed, as served
// (index.html with its import map).
func (h *Handler) Size() int { return h.size }

// ServeHTTP serves the asset the request path names.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the UI is read with GET", http.StatusMethodNotAllowed)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == "" {
		name = "index.html"
	}
	a := h.assets[name]
	if a == nil {
		http.Error(w, fmt.Sprintf("no UI asset %q: the UI starts at %s", name, h.prefix), http.StatusNotFound)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("ETag", a.etag)
	if r.URL.Query().Get("v") == a.version {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	hd.Set("Vary", "Accept-Encoding")
	hd.Set("X-Content-Type-Options", "nosniff")
	if name == "index.html" {
		hd.Set("Content-Security-Policy", h.csp)
	}
	if etagMatch(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if AcceptsGzip(r.Header.Get("Accept-Encoding")) {
		hd.Set("Content-Encoding", "gzip")
		body = a.gzipped
	}
	hd.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// etagMatch reports whether an If-None-Match header names etag.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// AcceptsGzip reports whether an Accept-Encoding header allows gzip (and
// does not refuse it with q=0); the HTTP API uses it for its answers too.
func AcceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
