package main

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
)

// getReader is how the get mode asks for and reads an answer.
type getReader struct {
	gzip   bool // ask for gzip (Accept-Encoding: gzip), as Go's HTTP client does
	decode bool // with gzip: inflate a compressed answer, as that client does
}

// getWorker is one closed-loop worker's state, reused request after
// request: the read buffer and the gzip reader (Go's transport makes a new
// gzip reader, with its 32 KB window, for every compressed answer; a
// worker that reuses one measures the agent, not the allocator).
type getWorker struct {
	buf   []byte
	zr    *gzip.Reader
	bytes int64 // body bytes of the last answer as sent (compressed or not)
}

// getBufBytes is a worker's read buffer: large enough that a 1 MB answer
// is a few dozen reads, not the 128 of io.Copy's 8 KB.
const getBufBytes = 64 << 10

// get sends one GET of path through r and reads the whole answer the way
// g says, into the worker's buffer. A non-2xx status is an error.
func (g getReader) get(ctx context.Context, r *requester, w *getWorker, path string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", r.base+path, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if r.token != "" {
		req.Header.Set("X-Consul-Token", r.token)
	}
	if g.gzip {
		// Set by hand, so the transport leaves the body as sent.
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if w.buf == nil {
		w.buf = make([]byte, getBufBytes)
	}
	counted := &countReader{r: resp.Body}
	var body io.Reader = counted
	if g.decode && resp.Header.Get("Content-Encoding") == "gzip" {
		if w.zr == nil {
			w.zr, err = gzip.NewReader(counted)
		} else {
			err = w.zr.Reset(counted)
		}
		if err != nil {
			return fmt.Errorf("GET %s: gzip: %w", path, err)
		}
		body = w.zr
	}
	for {
		_, err := body.Read(w.buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("GET %s: read body: %w", path, err)
		}
	}
	w.bytes = counted.n
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	return nil
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
