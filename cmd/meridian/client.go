package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
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
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base, "/")+path, bytes.NewReader(body))
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
