// Package browser holds the web UI's browser tests: a dev agent and a second
// federated datacenter in one process (internal/testcluster), and headless
// Chromium driven through the DevTools protocol (chromedp) against the UI the
// agent serves at /ui/. The tests click and type as a person would and read
// the results back through the Consul API client.
//
// They need the Debian package chromium (or chromium-browser,
// google-chrome) on PATH; without one every test says plainly that it did
// not run. Screenshots of each page are written under the test's temporary
// directory (kept with -test.v when MERIDIAN_SCREENSHOTS names a directory
// to copy them to).
package browser
