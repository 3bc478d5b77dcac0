package checks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// scriptWaitDelay is how long a script's output pipes stay open after the
// script exited or was killed, for a descendant that escaped its process
// group (or was left in the background) and still holds them.
const scriptWaitDelay = time.Second

// newHTTPClient builds the client of one http check. Keep-alives are off,
// as in Consul, so that a check measures a fresh connection each time and
// holds no idle connection between probes. No proxy is used: a check probes
// its target directly. Redirects are followed (Go's default, and Consul's).
func newHTTPClient(s Spec) *http.Client {
	dialer := &net.Dialer{Timeout: s.Timeout}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			DisableKeepAlives:   true,
			ForceAttemptHTTP2:   true,
			TLSHandshakeTimeout: s.Timeout,
			// The operator asked for it per check; the default is to verify.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: s.TLSSkipVerify}, //nolint:gosec
		},
	}
}

// probeHTTP: 2xx passing, 429 warning, anything else or no response
// critical. The output is Consul's "HTTP <method> <url>: <status> Output:
// <body>", the body cut to OutputMaxSize.
func (r *Runner) probeHTTP(ctx context.Context) (string, string) {
	s := r.spec
	var body io.Reader
	if s.Body != "" {
		body = strings.NewReader(s.Body)
	}
	req, err := http.NewRequestWithContext(ctx, s.Method, s.HTTP, body)
	if err != nil {
		return StatusCritical, err.Error()
	}
	if s.Header != nil {
		req.Header = http.Header(s.Header).Clone()
	}
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", UserAgent)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/plain, text/*, */*")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.log.Debug("http check failed", "error", err)
		return StatusCritical, err.Error()
	}
	defer resp.Body.Close()
	out, err := readHead(resp.Body, s.OutputMaxSize)
	if err != nil {
		r.log.Debug("http check body read failed", "error", err)
	}
	result := fmt.Sprintf("HTTP %s %s: %s Output: %s", s.Method, s.HTTP, resp.Status, out)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return StatusPassing, result
	case resp.StatusCode == http.StatusTooManyRequests:
		return StatusWarning, result
	}
	return StatusCritical, result
}

// readHead reads at most limit bytes of rd and notes when there was more.
func readHead(rd io.Reader, limit int) (string, error) {
	b, err := io.ReadAll(io.LimitReader(rd, int64(limit)+1))
	if len(b) <= limit {
		return string(b), err
	}
	return fmt.Sprintf("%s ... (captured first %d bytes)", cutHead(b[:limit]), limit), err
}

// probeTCP: passing if a connection opens before ctx ends, else critical.
func (r *Runner) probeTCP(ctx context.Context) (string, string) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.spec.TCP)
	if err != nil {
		r.log.Debug("tcp check failed", "error", err)
		return StatusCritical, err.Error()
	}
	if err := conn.Close(); err != nil {
		r.log.Debug("tcp check close failed", "error", err)
	}
	return StatusPassing, fmt.Sprintf("TCP connect %s: Success", r.spec.TCP)
}

// probeScript runs Args without a shell: exit 0 passing, 1 warning,
// anything else, a failure to start or the Timeout critical. The output is
// stdout and stderr interleaved, of which the last OutputMaxSize bytes are
// kept. On timeout or Stop the whole process group is killed.
func (r *Runner) probeScript(ctx context.Context) (string, string) {
	s := r.spec
	cmd := exec.CommandContext(ctx, s.Args[0], s.Args[1:]...)
	out := &tailBuffer{max: s.OutputMaxSize}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = scriptWaitDelay
	killGroupOnCancel(cmd)
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.log.Warn("check script timed out", "timeout", s.Timeout)
		msg := fmt.Sprintf("Timed out (%s) running check", s.Timeout)
		if o := out.String(); o != "" {
			msg += "\n\n" + o
		}
		return StatusCritical, msg
	}
	if err == nil {
		return StatusPassing, out.String()
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		// Not started (no such program, not executable), or output lost.
		r.log.Debug("check script failed", "error", err)
		o := out.String()
		if o != "" {
			o += "\n"
		}
		return StatusCritical, o + err.Error()
	}
	if exitErr.ExitCode() == 1 {
		return StatusWarning, out.String()
	}
	return StatusCritical, out.String()
}

// tailBuffer keeps the last max bytes written to it and counts them all.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	total int64
	buf   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total += int64(len(p))
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		n := copy(t.buf, t.buf[over:])
		t.buf = t.buf[:n]
	}
	return len(p), nil
}

// String returns the kept bytes, preceded by Consul's note when some were
// dropped.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total <= int64(len(t.buf)) {
		return string(t.buf)
	}
	return fmt.Sprintf("Captured %d of %d bytes\n...\n%s", len(t.buf), t.total, cutTail(t.buf))
}

// truncateString cuts s to limit bytes with Consul's note, for TTL outputs.
func truncateString(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return fmt.Sprintf("%s ... (captured %d of %d bytes)", cutHead([]byte(s[:limit])), limit, len(s))
}

// cutHead drops a rune split at the end of b by truncation.
func cutHead(b []byte) string {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if r, size := utf8.DecodeLastRune(b); r != utf8.RuneError || size != 1 {
			break
		}
		b = b[:len(b)-1]
	}
	return string(b)
}

// cutTail drops a rune split at the start of b by truncation.
func cutTail(b []byte) string {
	for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
		b = b[1:]
	}
	return string(b)
}
