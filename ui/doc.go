// Package ui is Meridian's web UI: plain HTML, CSS and JavaScript modules
// embedded in the binary (go:embed), and the http.Handler that serves them.
//
// The UI has no build step and fetches nothing at run time from anywhere but
// the agent that serves it: the browser reads the agent's own /v1/ HTTP API,
// exactly what curl would, so it works against any agent. httpapi mounts the
// Handler under ui_config.content_path (/ui/ by default) when
// ui_config.enabled (-ui, on in -dev) is set.
//
// The Handler gzips every asset once, at New, and serves it with its content
// type and an ETag that is the hash of its content. index.html is always
// revalidated (Cache-Control: no-cache, a 304 while it is unchanged); it
// names every other asset with its hash (app.js?v=HASH, and an import map
// for the modules the modules import), and those URLs are cached for a
// year, so a page load costs one round trip for the assets and a new binary
// is picked up at once. It is safe for concurrent use.
//
// The pages live in assets/: index.html is the shell, app.js routes the
// location hash (#/services, #/kv/a/b, ... with ?dc=) to the page modules,
// and api.js holds the fetch wrapper and the blocking-query loop every live
// page uses.
package ui
