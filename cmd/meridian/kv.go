package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// kvPair is a key as /v1/kv answers it.
type kvPair struct {
	Key         string
	CreateIndex uint64
	ModifyIndex uint64
	LockIndex   uint64
	Flags       uint64
	Value       []byte
	Session     string `json:",omitempty"`
}

// kvExportEntry is one key of `kv export` / `kv import`, as Consul writes it.
type kvExportEntry struct {
	Key   string `json:"key"`
	Flags uint64 `json:"flags"`
	Value string `json:"value"`
}

// importProgressMin is the number of entries above which `kv import`
// reports progress on stderr.
const importProgressMin = 100

func runKV(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: meridian kv get|put|delete|export|import [options] ...")
		return 1
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "get":
		return kvGet(rest, stdout, stderr)
	case "put":
		return kvPut(rest, os.Stdin, stdout, stderr)
	case "delete":
		return kvDelete(rest, stdout, stderr)
	case "export":
		return kvExport(rest, stdout, stderr)
	case "import":
		return kvImport(rest, os.Stdin, stdout, stderr)
	}
	fmt.Fprintf(stderr, "meridian kv: unknown subcommand %q (get, put, delete, export, import)\n", sub)
	return 1
}

func kvPath(key string) string {
	return "/v1/kv/" + (&url.URL{Path: strings.TrimPrefix(key, "/")}).EscapedPath()
}

func kvGet(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("kv get", "Reads a key, or the keys under a prefix.", stderr)
	recurse := fs.Bool("recurse", false, "read every key under the prefix")
	detailed := fs.Bool("detailed", false, "print every field of each key")
	keys := fs.Bool("keys", false, "list key names under the prefix")
	sep := fs.String("separator", "/", "with -keys, group names up to this separator")
	if ok, code := parseArgs(fs, args, 1, "one key"); !ok {
		return code
	}
	c, key := client(), fs.Arg(0)
	switch {
	case *keys:
		q := "?keys&separator=" + url.QueryEscape(*sep)
		var names []string
		code, body, err := c.send("GET", kvPath(key)+q, nil)
		if err == nil && code == 200 {
			err = json.Unmarshal(body, &names)
		}
		if err != nil {
			return fail(stderr, "kv get", err)
		}
		for _, n := range names {
			fmt.Fprintln(stdout, n)
		}
		return 0
	case *recurse:
		pairs, err := kvList(c, key)
		if err != nil {
			return fail(stderr, "kv get", err)
		}
		for _, p := range pairs {
			if *detailed {
				printDetailed(stdout, p)
				fmt.Fprintln(stdout)
			} else {
				fmt.Fprintf(stdout, "%s:%s\n", p.Key, p.Value)
			}
		}
		return 0
	}
	code, body, err := c.send("GET", kvPath(key), nil)
	if err != nil {
		return fail(stderr, "kv get", err)
	}
	if code == http.StatusNotFound {
		fmt.Fprintf(stderr, "meridian kv get: no key exists at %q\n", key)
		return 1
	}
	var pairs []kvPair
	if code != 200 {
		return fail(stderr, "kv get", fmt.Errorf("%d: %s", code, strings.TrimSpace(string(body))))
	}
	if err := json.Unmarshal(body, &pairs); err != nil || len(pairs) == 0 {
		return fail(stderr, "kv get", fmt.Errorf("decode answer: %v", err))
	}
	if *detailed {
		printDetailed(stdout, pairs[0])
		return 0
	}
	fmt.Fprintf(stdout, "%s\n", pairs[0].Value)
	return 0
}

func kvList(c *httpClient, prefix string) ([]kvPair, error) {
	code, body, err := c.send("GET", kvPath(prefix)+"?recurse", nil)
	if err != nil {
		return nil, err
	}
	if code == http.StatusNotFound {
		return nil, nil
	}
	if code != 200 {
		return nil, fmt.Errorf("%d: %s", code, strings.TrimSpace(string(body)))
	}
	var pairs []kvPair
	if err := json.Unmarshal(body, &pairs); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	return pairs, nil
}

func printDetailed(w io.Writer, p kvPair) {
	fmt.Fprintf(w, "CreateIndex      %d\nFlags            %d\nKey              %s\nLockIndex        %d\nModifyIndex      %d\nSession          %s\nValue            %s\n",
		p.CreateIndex, p.Flags, p.Key, p.LockIndex, p.ModifyIndex, orDash(p.Session), p.Value)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readData reads a value given as text, @file or - (stdin).
func readData(arg string, in io.Reader) ([]byte, error) {
	switch {
	case arg == "-":
		return io.ReadAll(in)
	case strings.HasPrefix(arg, "@"):
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", arg[1:], err)
		}
		return b, nil
	}
	return []byte(arg), nil
}

func kvPut(args []string, in io.Reader, stdout, stderr io.Writer) int {
	fs, client := clientFlags("kv put", "Writes a key: KEY [VALUE|@file|-].", stderr)
	flags := fs.Uint64("flags", 0, "opaque flags stored with the key")
	cas := fs.Bool("cas", false, "write only if the key's modify index is -modify-index (0: only if absent)")
	modIdx := fs.Uint64("modify-index", 0, "with -cas, the modify index the key must have")
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fmt.Fprintf(stderr, "meridian kv put: expected KEY [VALUE|@file|-], got %d argument(s)\n", fs.NArg())
		return 1
	}
	var value []byte
	if fs.NArg() == 2 {
		v, err := readData(fs.Arg(1), in)
		if err != nil {
			return fail(stderr, "kv put", err)
		}
		value = v
	}
	q := "?flags=" + strconv.FormatUint(*flags, 10)
	if *cas {
		q += "&cas=" + strconv.FormatUint(*modIdx, 10)
	}
	ok, err := kvWrite(client(), "PUT", kvPath(fs.Arg(0))+q, value)
	if err != nil {
		return fail(stderr, "kv put", err)
	}
	if !ok {
		fmt.Fprintf(stderr, "meridian kv put: did not write %q: its modify index is not %d\n", fs.Arg(0), *modIdx)
		return 1
	}
	fmt.Fprintf(stdout, "Success! Data written to: %s\n", fs.Arg(0))
	return 0
}

// kvWrite sends a PUT or DELETE and answers the agent's true/false.
func kvWrite(c *httpClient, method, path string, body []byte) (bool, error) {
	code, b, err := c.send(method, path, body)
	if err != nil {
		return false, err
	}
	if code != 200 {
		return false, fmt.Errorf("%s %s: %d: %s", method, path, code, strings.TrimSpace(string(b)))
	}
	return strings.Contains(string(b), "true"), nil
}

func kvDelete(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("kv delete", "Deletes a key, or every key under a prefix.", stderr)
	recurse := fs.Bool("recurse", false, "delete every key under the prefix")
	if ok, code := parseArgs(fs, args, 1, "one key"); !ok {
		return code
	}
	path := kvPath(fs.Arg(0))
	if *recurse {
		path += "?recurse"
	}
	if _, err := kvWrite(client(), "DELETE", path, nil); err != nil {
		return fail(stderr, "kv delete", err)
	}
	fmt.Fprintf(stdout, "Success! Deleted key: %s\n", fs.Arg(0))
	return 0
}

func kvExport(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("kv export", "Exports the keys under a prefix as JSON.", stderr)
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "meridian kv export: expected at most one prefix, got %d argument(s)\n", fs.NArg())
		return 1
	}
	pairs, err := kvList(client(), fs.Arg(0))
	if err != nil {
		return fail(stderr, "kv export", err)
	}
	out := make([]kvExportEntry, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, kvExportEntry{Key: p.Key, Flags: p.Flags, Value: base64.StdEncoding.EncodeToString(p.Value)})
	}
	b, err := json.MarshalIndent(out, "", "\t")
	if err != nil {
		return fail(stderr, "kv export", err)
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

func kvImport(args []string, in io.Reader, stdout, stderr io.Writer) int {
	fs, client := clientFlags("kv import", "Imports keys from JSON written by kv export: [@file|-|JSON].", stderr)
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	src := "-"
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "meridian kv import: expected at most one source, got %d argument(s)\n", fs.NArg())
		return 1
	}
	if fs.NArg() == 1 {
		src = fs.Arg(0)
	}
	data, err := readData(src, in)
	if err != nil {
		return fail(stderr, "kv import", err)
	}
	var entries []kvExportEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return fail(stderr, "kv import", fmt.Errorf("decode JSON: %w", err))
	}
	c := client()
	for i, e := range entries {
		value, err := base64.StdEncoding.DecodeString(e.Value)
		if err != nil {
			return fail(stderr, "kv import", fmt.Errorf("entry %d (%q): value is not base64: %w", i, e.Key, err))
		}
		path := kvPath(e.Key) + "?flags=" + strconv.FormatUint(e.Flags, 10)
		if _, err := kvWrite(c, "PUT", path, value); err != nil {
			return fail(stderr, "kv import", err)
		}
		if len(entries) > importProgressMin && ((i+1)%100 == 0 || i+1 == len(entries)) {
			fmt.Fprintf(stderr, "\rimported %d/%d", i+1, len(entries))
			if i+1 == len(entries) {
				fmt.Fprintln(stderr)
			}
		}
	}
	fmt.Fprintf(stdout, "Imported %d key(s)\n", len(entries))
	return 0
}
