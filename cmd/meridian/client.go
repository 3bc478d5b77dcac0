package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/meridian/meridian/configs"
)

// httpClient talks to a running agent's HTTP API.
type httpClient struct {
	base string
	http *http.Client
	// token and tokenFile are the ACL token every request carries (see
	// aclToken); both empty: none.
	token, tokenFile string
	// params are query parameters every request carries: the -datacenter
	// and -stale of serverFlags.
	params url.Values
}

// staleMode says what serverFlags' -stale does for a command.
type staleMode int

const (
	// staleRead sends ?stale: any server may answer the command's reads.
	staleRead staleMode = iota
	// staleAccepted takes -stale, as Consul's CLI does, for a command that
	// writes (or holds a lock), where it changes nothing.
	staleAccepted
	// staleOwn leaves -stale to the command, which defines its own.
	staleOwn
)

// serverFlags adds Consul's -datacenter and -stale (see staleMode) to a
// command that talks to the servers, and returns client wrapped so that
// every request of the command carries them.
func serverFlags(fs *flag.FlagSet, client func() *httpClient, mode staleMode) func() *httpClient {
	dc := fs.String("datacenter", "", "datacenter to send the command to (default: the agent's)")
	stale := new(bool)
	switch mode {
	case staleRead:
		stale = fs.Bool("stale", false, "let any server answer, not only the leader (faster, may be stale)")
	case staleAccepted:
		fs.Bool("stale", false, "accepted as Consul's CLI takes it; this command's writes always go to the leader")
	}
	return func() *httpClient {
		c := client()
		c.params = url.Values{}
		if *dc != "" {
			c.params.Set("dc", *dc)
		}
		if *stale {
			c.params.Set("stale", "")
		}
		return c
	}
}

// clientFlags returns a FlagSet with the flags every client command has,
// and a function that builds the client once the flags are parsed.
func clientFlags(name, synopsis string, stderr io.Writer) (*flag.FlagSet, func() *httpClient) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", "", "address of the agent's HTTP API (default $MERIDIAN_HTTP_ADDR, $CONSUL_HTTP_ADDR, or 127.0.0.1:8500)")
	token := fs.String("token", "", "ACL token to send (default $MERIDIAN_HTTP_TOKEN, $CONSUL_HTTP_TOKEN)")
	tokenFile := fs.String("token-file", "", "file holding the ACL token to send (default $MERIDIAN_HTTP_TOKEN_FILE, $CONSUL_HTTP_TOKEN_FILE)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: meridian %s\n\n%s\n\nOptions:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs, func() *httpClient {
		c := &httpClient{
			base: configs.HTTPAddr(*addr, os.Environ()),
			http: &http.Client{Timeout: 30 * time.Second, Transport: cliTransport(os.Environ())},
		}
		c.token, c.tokenFile = aclToken(*token, *tokenFile, os.Getenv)
		return c
	}
}

// send makes a request with a body and answers the status and body; it
// does not treat a status other than 200 as an error.
func (c *httpClient) send(method, path string, body []byte) (int, []byte, error) {
	req, err := c.newRequest(context.Background(), method, path, body)
	if err != nil {
		return 0, nil, err
	}
	// The agent takes a POST only with a JSON type, so that no web page can
	// send one without a CORS preflight (it reads bodies by endpoint, not
	// by this header, so a raw KV value is sent the same way).
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot reach the agent at %s (is it running? set -http-addr): %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("read answer from %s: %w", c.base, err)
	}
	return resp.StatusCode, b, nil
}

// newRequest builds a request to the agent with the ACL token, if any.
func (c *httpClient) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	return c.newStreamRequest(ctx, method, path, bytes.NewReader(body))
}

// newStreamRequest is newRequest with a body read as it is sent.
func (c *httpClient) newStreamRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), body)
	if err != nil {
		return nil, err
	}
	tok, err := c.secret()
	if err != nil {
		return nil, err
	}
	if tok != "" {
		req.Header.Set("X-Consul-Token", tok)
	}
	return req, nil
}

// url is the agent's address for path, with the client's params added.
func (c *httpClient) url(path string) string {
	if len(c.params) > 0 {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + strings.TrimPrefix(withQuery("", c.params), "?")
	}
	return strings.TrimRight(c.base, "/") + path
}

// do sends a request without a body and decodes a JSON answer into out
// (when not nil); a status other than 200 is an error.
func (c *httpClient) do(method, path string, out any) error {
	code, body, err := c.send(method, path, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s: %s", method, path, code, http.StatusText(code), strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode answer of %s: %w", path, err)
	}
	return nil
}

// sendJSON sends a request with a JSON body; a status other than 200 is an
// error.
func (c *httpClient) sendJSON(method, path string, in any) error {
	return c.sendJSONReply(method, path, in, nil)
}

// sendJSONReply sends in as a JSON body (none when nil) and decodes the
// JSON answer into out (when not nil); a status other than 200 is an error.
func (c *httpClient) sendJSONReply(method, path string, in, out any) error {
	var b []byte
	if in != nil {
		var err error
		if b, err = json.Marshal(in); err != nil {
			return err
		}
	}
	code, body, err := c.send(method, path, b)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s: %s", method, path, code, http.StatusText(code), strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode answer of %s: %w", path, err)
	}
	return nil
}

// parseArgs parses the flags; it returns false and the exit code when the
// command should stop (help, bad flag, wrong number of arguments).
func parseArgs(fs *flag.FlagSet, args []string, nargs int, argsHelp string) (ok bool, code int) {
	if ok, code := parseFlags(fs, args); !ok {
		return false, code
	}
	if nargs >= 0 && fs.NArg() != nargs {
		return false, usageError(fs, fmt.Sprintf("meridian %s: expected %s, got %d argument(s)", commandName(fs), argsHelp, fs.NArg()))
	}
	return true, 0
}

func fail(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "meridian %s: %v\n", name, err)
	return 1
}

// aclToken picks the token as Consul's CLI does: -token, then -token-file,
// then $MERIDIAN_HTTP_TOKEN or $CONSUL_HTTP_TOKEN, then
// $MERIDIAN_HTTP_TOKEN_FILE or $CONSUL_HTTP_TOKEN_FILE. It returns the
// token, or the file to read it from.
func aclToken(flagToken, flagFile string, getenv func(string) string) (token, file string) {
	switch {
	case flagToken != "":
		return flagToken, ""
	case flagFile != "":
		return "", flagFile
	}
	for _, k := range []string{"MERIDIAN_HTTP_TOKEN", "CONSUL_HTTP_TOKEN"} {
		if v := getenv(k); v != "" {
			return v, ""
		}
	}
	for _, k := range []string{"MERIDIAN_HTTP_TOKEN_FILE", "CONSUL_HTTP_TOKEN_FILE"} {
		if v := getenv(k); v != "" {
			return "", v
		}
	}
	return "", ""
}

// secret is the token to send, read from its file when it has one.
func (c *httpClient) secret() (string, error) {
	if c.tokenFile == "" {
		return c.token, nil
	}
	b, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return "", fmt.Errorf("read the token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", c.tokenFile)
	}
	return tok, nil
}
