package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/meridian/meridian/server"
)

const snapshotUsage = `Usage: meridian snapshot <subcommand> [options] FILE

Subcommands:
    save      Saves the datacenter's state to FILE
    restore   Replaces the datacenter's state with FILE's
    inspect   Prints what the archive FILE holds
`

func runSnapshot(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "save":
			return runSnapshotSave(args[1:], stdout, stderr)
		case "restore":
			return runSnapshotRestore(args[1:], stdout, stderr)
		case "inspect":
			return runSnapshotInspect(args[1:], stdout, stderr)
		}
	}
	fmt.Fprint(stderr, snapshotUsage)
	if len(args) == 0 {
		return 1
	}
	if h := strings.TrimLeft(args[0], "-"); h == "h" || h == "help" {
		return 0
	}
	fmt.Fprintf(stderr, "\nmeridian snapshot: unknown subcommand %q\n", args[0])
	return 1
}

func runSnapshotSave(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("snapshot save [options] FILE",
		"Saves a snapshot of the datacenter's state (catalog, KV, sessions, prepared queries,\ncoordinates) to FILE, checking the archive's checksum as it arrives.", stderr)
	stale := fs.Bool("stale", false, "let any server take it from its own state, not only the leader")
	client = serverFlags(fs, client, staleOwn)
	if ok, code := parseArgs(fs, args, 1, "one file name"); !ok {
		return code
	}
	file := fs.Arg(0)
	path := "/v1/snapshot"
	if *stale {
		path += "?stale"
	}
	resp, err := streamRequest(client(), "GET", path, nil, -1)
	if err != nil {
		return fail(stderr, "snapshot save", err)
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".*.part")
	if err != nil {
		return fail(stderr, "snapshot save", err)
	}
	defer os.Remove(tmp.Name())
	prog := newProgress(stderr, "saved", resp.ContentLength)
	a, err := server.OpenArchive(io.TeeReader(resp.Body, io.MultiWriter(tmp, prog)))
	if err == nil {
		_, err = io.Copy(io.Discard, a)
	}
	prog.done()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return fail(stderr, "snapshot save", err)
	}
	fmt.Fprintf(stdout, "Saved and verified snapshot to index %d in %s\n", a.Meta.Index, file)
	return 0
}

func runSnapshotRestore(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("snapshot restore [options] FILE",
		"Replaces the state of every server of the datacenter with the snapshot in FILE. The\narchive is checked whole first: one that is damaged or cut short changes nothing.", stderr)
	client = serverFlags(fs, client, staleAccepted)
	if ok, code := parseArgs(fs, args, 1, "one file name"); !ok {
		return code
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fail(stderr, "snapshot restore", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fail(stderr, "snapshot restore", err)
	}
	prog := newProgress(stderr, "sent", info.Size())
	resp, err := streamRequest(client(), "PUT", "/v1/snapshot", io.TeeReader(f, prog), info.Size())
	prog.done()
	if err != nil {
		return fail(stderr, "snapshot restore", err)
	}
	resp.Body.Close()
	fmt.Fprintln(stdout, "Restored snapshot")
	return 0
}

func runSnapshotInspect(args []string, stdout, stderr io.Writer) int {
	fs, _ := clientFlags("snapshot inspect FILE", "Verifies the snapshot archive FILE and prints its index, term, size and rows per table.", stderr)
	if ok, code := parseArgs(fs, args, 1, "one file name"); !ok {
		return code
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fail(stderr, "snapshot inspect", err)
	}
	defer f.Close()
	meta, counts, err := server.InspectArchive(f)
	if err != nil {
		return fail(stderr, "snapshot inspect", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\t%s\nSize\t%d\nIndex\t%d\nTerm\t%d\nDatacenter\t%s\nCreated\t%s\n\n",
		meta.ID, meta.Size, meta.Index, meta.Term, meta.Datacenter, meta.Created.Format(time.RFC3339))
	fmt.Fprintln(tw, "Table\tCount")
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%d\n", c.Table, c.Count)
	}
	tw.Flush()
	return 0
}

// streamRequest sends a request whose body (or answer) may be large: no
// overall timeout, since a snapshot of gigabytes takes as long as it takes.
// It carries the client's token and parameters and goes through its
// transport (TLS, unix socket). A status other than 200 is an error
// carrying the agent's one-line answer.
func streamRequest(c *httpClient, method, path string, body io.Reader, size int64) (*http.Response, error) {
	req, err := c.newStreamRequest(context.Background(), method, path, body)
	if err != nil {
		return nil, err
	}
	if size >= 0 {
		req.ContentLength = size
	}
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the agent at %s (is it running? set -http-addr): %w", c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, http.StatusText(resp.StatusCode), strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

// progress prints a line with bytes and rate on a terminal, rewritten in
// place at most five times a second; it prints nothing when w is not a
// terminal.
type progress struct {
	w     io.Writer
	verb  string
	total int64
	start time.Time

	mu   sync.Mutex
	n    int64
	last time.Time
}

func newProgress(w io.Writer, verb string, total int64) *progress {
	if !isTerminal(w) {
		return &progress{}
	}
	return &progress{w: w, verb: verb, total: total, start: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) Write(b []byte) (int, error) {
	if p.w == nil {
		return len(b), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond {
		p.last = now
		p.print()
	}
	return len(b), nil
}

func (p *progress) print() {
	mib := float64(p.n) / (1 << 20)
	rate := mib / max(time.Since(p.start).Seconds(), 0.001)
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%s %.1f of %.1f MiB (%.1f MiB/s)   ", p.verb, mib, float64(p.total)/(1<<20), rate)
		return
	}
	fmt.Fprintf(p.w, "\r%s %.1f MiB (%.1f MiB/s)   ", p.verb, mib, rate)
}

func (p *progress) done() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.print()
	fmt.Fprintln(p.w)
}
