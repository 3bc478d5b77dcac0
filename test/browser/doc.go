// Package browser holds the web UI's browser tests: a dev agent and a second
// federated datacenter in one process (internal/testcluster), and headless
// Chromium driven through the DevTools protocol (chromedp) against the UI the
// agent serves at /ui/. The tests click and type as a person would and read
// the results back through the Consul API client.
//
// They need the Debian package chromium (or chromium-browser,
// google-chrome) on PATH; without one every test says plainly that it did
// not run. A screenshot of each page is written under the test's temporary
// directory and checked not to be blank; MERIDIAN_SCREENSHOTS=DIR keeps a
// copy in DIR. TestUIFigures logs the figures (go test -v -run
// TestUIFigures ./test/browser/).
package browser
