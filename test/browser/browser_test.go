package browser

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is one headless Chromium tab and what its console reported.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string // the UI's URL, http://host:port/ui/

	mu   sync.Mutex
	errs []string
}

// chromiumPath finds Chromium, or skips the test saying it did not run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("browser tests did not run: no Chromium on PATH (apt-get install chromium)")
	return ""
}

// newBrowser starts headless Chromium at 1280x900 and stops it at the end
// of the test, failing the test if a page threw an exception or called
// console.error meanwhile, or the browser logged an error other than a
// failed request (which the error tests cause on purpose): a Content
// Security Policy refusal fails it too.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			// A failed request is the browser's "network" entry, which
			// the error tests cause; a CSP refusal ("security") and
			// everything the page itself reports are errors.
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				b.record(fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		<-done
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.errs {
			t.Errorf("browser console: %s", e)
		}
	})
	return b
}

func (b *browser) record(s string) {
	b.mu.Lock()
	b.errs = append(b.errs, s)
	b.mu.Unlock()
}

// run runs steps with a deadline.
func (b *browser) run(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// must runs steps, failing the test on an error.
func (b *browser) must(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := b.run(20*time.Second, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// open loads the UI at hash (#/services...) as a new navigation.
func (b *browser) open(hash string) {
	b.t.Helper()
	b.must("leave "+b.location(), chromedp.Navigate("about:blank"))
	if err := b.run(20*time.Second, chromedp.Navigate(b.base+hash)); err != nil {
		st, _ := eval[string](b, "document.readyState + ' ' + location.href + ' ' + JSON.stringify(performance.getEntriesByType('resource').map(e => [e.name, Math.round(e.startTime), Math.round(e.duration)]))")
		b.t.Fatalf("open %s: %v\n%s", hash, err, st)
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, js string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js))
}

// waitJS waits until the JavaScript expression is true, failing the test
// after timeout with the expression and the page's text; it returns how
// long that took.
func (b *browser) waitJS(timeout time.Duration, what, js string) time.Duration {
	b.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, err := eval[bool](b, "!!("+js+")")
		if err == nil && ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			text, _ := eval[string](b, "(document.querySelector('header') || document.body).innerText + '\\n' + (document.querySelector('main') || document.body).innerText")
			b.t.Fatalf("%s: not true within %v: %s (last error %v)\npage %s:\n%s", what, timeout, js, err, b.location(), text)
		}
		time.Sleep(15 * time.Millisecond)
	}
}

func (b *browser) location() string {
	loc, _ := eval[string](b, "location.href")
	return loc
}

// text returns the innerText of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := eval[string](b, fmt.Sprintf("(document.querySelector(%q) || {}).innerText || ''", sel))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// screenshot saves the viewport as name.png under the test's temp dir (and
// MERIDIAN_SCREENSHOTS when set) and fails the test if it is blank: fewer
// than 8 colours.
func (b *browser) screenshot(dir, name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	cancel()
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		b.t.Fatalf("save screenshot: %v", err)
	}
	if d := os.Getenv("MERIDIAN_SCREENSHOTS"); d != "" {
		_ = os.WriteFile(filepath.Join(d, name+".png"), buf, 0o644)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		b.t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	if n := colours(img, 8); n < 8 {
		b.t.Errorf("screenshot %s has %d colours: blank page", name, n)
	}
}

// narrow shows the page 390 px wide, as a phone does: it must not scroll
// sideways (wide tables scroll inside their own box). It screenshots it as
// name-390 and goes back to 1280 px.
func (b *browser) narrow(dir, name string) {
	b.t.Helper()
	b.must("390 px", chromedp.EmulateViewport(390, 844))
	width, err := eval[int](b, `document.documentElement.scrollWidth`)
	if err != nil || width > 400 {
		b.t.Errorf("%s at 390 px is %d px wide (%v), want no sideways scroll", name, width, err)
	}
	b.screenshot(dir, name+"-390")
	b.must("1280 px", chromedp.EmulateViewport(1280, 900))
}

// colours counts distinct colours of img, stopping at max.
func colours(img image.Image, max int) int {
	seen := map[[4]uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 3 {
		for x := r.Min.X; x < r.Max.X; x += 3 {
			cr, cg, cb, ca := img.At(x, y).RGBA()
			seen[[4]uint32{cr, cg, cb, ca}] = true
			if len(seen) >= max {
				return len(seen)
			}
		}
	}
	return len(seen)
}
