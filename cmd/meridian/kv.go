package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
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
	fs, client := clientFlags("kv get [options] [KEY_OR_PREFIX]", "Reads a key, or the keys under a prefix.", stderr)
	rf := addReadFlags(fs)
	recurse := fs.Bool("recurse", false, "read every key under the prefix")
	detailed := fs.Bool("detailed", false, "print every field of each key")
	keys := fs.Bool("keys", false, "list key names under the prefix")
	sep := fs.String("separator", "/", "with -keys, group names up to this separator (empty: none)")
	b64 := fs.Bool("base64", false, "print values base64-encoded")
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	switch {
	case fs.NArg() > 1:
		return usageError(fs, fmt.Sprintf("meridian kv get: expected one key, got %d argument(s)", fs.NArg()))
	case fs.NArg() == 0 && !*keys && !*recurse:
		return usageError(fs, "meridian kv get: missing KEY argument")
	}
	c, key := client(), fs.Arg(0)
	value := func(p kvPair) string {
		if *b64 {
			return base64.StdEncoding.EncodeToString(p.Value)
		}
		return string(p.Value)
	}
	q := url.Values{}
	rf.set(q)
	switch {
	case *keys:
		q.Set("keys", "")
		if *sep != "" {
			q.Set("separator", *sep)
		}
		var names []string
		code, body, err := c.send("GET", withQuery(kvPath(key), q), nil)
		if err == nil && code == http.StatusOK {
			err = json.Unmarshal(body, &names)
		} else if err == nil && code != http.StatusNotFound {
			err = fmt.Errorf("%d: %s", code, strings.TrimSpace(string(body)))
		}
		if err != nil {
			return fail(stderr, "kv get", err)
		}
		for _, n := range names {
			fmt.Fprintln(stdout, n)
		}
		return 0
	case *recurse:
		pairs, err := kvList(c, key, q)
		if err != nil {
			return fail(stderr, "kv get", err)
		}
		for i, p := range pairs {
			if *detailed {
				if i > 0 {
					fmt.Fprintln(stdout)
				}
				printDetailed(stdout, p, value(p))
			} else {
				fmt.Fprintf(stdout, "%s:%s\n", p.Key, value(p))
			}
		}
		return 0
	}
	code, body, err := c.send("GET", withQuery(kvPath(key), q), nil)
	if err != nil {
		return fail(stderr, "kv get", err)
	}
	if code == http.StatusNotFound {
		fmt.Fprintf(stderr, "Error! No key exists at: %s\n", key)
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
		printDetailed(stdout, pairs[0], value(pairs[0]))
		return 0
	}
	fmt.Fprintf(stdout, "%s\n", value(pairs[0]))
	return 0
}

// kvList reads every key under prefix; q holds more parameters (dc,
// stale), or is nil.
func kvList(c *httpClient, prefix string, q url.Values) ([]kvPair, error) {
	q = maps.Clone(q)
	if q == nil {
		q = url.Values{}
	}
	q.Set("recurse", "")
	code, body, err := c.send("GET", withQuery(kvPath(prefix), q), nil)
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

func printDetailed(w io.Writer, p kvPair, value string) {
	fmt.Fprintf(w, "CreateIndex      %d\nFlags            %d\nKey              %s\nLockIndex        %d\nModifyIndex      %d\nSession          %s\nValue            %s\n",
		p.CreateIndex, p.Flags, p.Key, p.LockIndex, p.ModifyIndex, orDash(p.Session), value)
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
	fs, client := clientFlags("kv put [options] KEY [VALUE|@file|-]", "Writes a key: KEY [VALUE|@file|-].", stderr)
	dc := fs.String("datacenter", "", "datacenter to write to (default: the agent's)")
	fs.Bool("stale", false, "accepted as Consul's CLI takes it; a write always goes to the leader")
	flags := fs.Uint64("flags", 0, "opaque flags stored with the key")
	cas := fs.Bool("cas", false, "write only if the key's modify index is -modify-index (0: only if absent)")
	modIdx := fs.Uint64("modify-index", 0, "with -cas, the modify index the key must have")
	b64 := fs.Bool("base64", false, "the value is base64-encoded: decode it before writing")
	acquire := fs.Bool("acquire", false, "acquire the key's lock for -session (written only if not held by another)")
	release := fs.Bool("release", false, "release the key's lock held by -session")
	session := fs.String("session", "", "with -acquire or -release, the session ID")
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	switch {
	case fs.NArg() == 0:
		return usageError(fs, "meridian kv put: missing KEY argument")
	case fs.NArg() > 2:
		return usageError(fs, fmt.Sprintf("meridian kv put: expected KEY [VALUE|@file|-], got %d argument(s)", fs.NArg()))
	case *acquire && *release:
		return usageError(fs, "meridian kv put: -acquire and -release cannot be used together")
	case (*acquire || *release) && *session == "":
		return usageError(fs, "meridian kv put: -acquire and -release need -session")
	case *session != "" && !*acquire && !*release:
		return usageError(fs, "meridian kv put: -session needs -acquire or -release")
	case *cas && (*acquire || *release):
		return usageError(fs, "meridian kv put: -cas cannot be used with -acquire or -release")
	}
	key := fs.Arg(0)
	var value []byte
	if fs.NArg() == 2 {
		v, err := readData(fs.Arg(1), in)
		if err != nil {
			return fail(stderr, "kv put", err)
		}
		value = v
	}
	if *b64 {
		v, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(value)))
		if err != nil {
			return usageError(fs, fmt.Sprintf("meridian kv put: -base64: the value is not base64: %v", err))
		}
		value = v
	}
	q := url.Values{"flags": {strconv.FormatUint(*flags, 10)}}
	if *dc != "" {
		q.Set("dc", *dc)
	}
	switch {
	case *cas:
		q.Set("cas", strconv.FormatUint(*modIdx, 10))
	case *acquire:
		q.Set("acquire", *session)
	case *release:
		q.Set("release", *session)
	}
	ok, err := kvWrite(client(), "PUT", withQuery(kvPath(key), q), value)
	if err != nil {
		return fail(stderr, "kv put", err)
	}
	switch {
	case *acquire && !ok:
		fmt.Fprintln(stderr, "Error! Did not acquire lock")
		return 1
	case *acquire:
		fmt.Fprintf(stdout, "Success! Lock acquired on: %s\n", key)
	case *release && !ok:
		fmt.Fprintln(stderr, "Error! Did not release lock")
		return 1
	case *release:
		fmt.Fprintf(stdout, "Success! Lock released on: %s\n", key)
	case !ok:
		fmt.Fprintf(stderr, "Error! Did not write to %s: CAS failed\n", key)
		return 1
	default:
		fmt.Fprintf(stdout, "Success! Data written to: %s\n", key)
	}
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
	fs, client := clientFlags("kv delete [options] KEY_OR_PREFIX", "Deletes a key, or every key under a prefix.", stderr)
	dc := fs.String("datacenter", "", "datacenter to delete in (default: the agent's)")
	fs.Bool("stale", false, "accepted as Consul's CLI takes it; a write always goes to the leader")
	recurse := fs.Bool("recurse", false, "delete every key under the prefix")
	cas := fs.Bool("cas", false, "delete only if the key's modify index is -modify-index")
	modIdx := fs.Uint64("modify-index", 0, "with -cas, the modify index the key must have")
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	switch {
	case fs.NArg() > 1:
		return usageError(fs, fmt.Sprintf("meridian kv delete: expected one key, got %d argument(s)", fs.NArg()))
	case fs.NArg() == 0 && !*recurse:
		return usageError(fs, "meridian kv delete: missing KEY argument")
	case *cas && *recurse:
		return usageError(fs, "meridian kv delete: -cas and -recurse cannot be used together")
	case *cas && *modIdx == 0:
		return usageError(fs, "meridian kv delete: -cas needs -modify-index")
	}
	key := fs.Arg(0)
	q := url.Values{}
	if *dc != "" {
		q.Set("dc", *dc)
	}
	if *recurse {
		q.Set("recurse", "")
	}
	if *cas {
		q.Set("cas", strconv.FormatUint(*modIdx, 10))
	}
	ok, err := kvWrite(client(), "DELETE", withQuery(kvPath(key), q), nil)
	if err != nil {
		return fail(stderr, "kv delete", err)
	}
	switch {
	case *cas && !ok:
		fmt.Fprintf(stderr, "Error! Did not delete key %s: CAS failed\n", key)
		return 1
	case *recurse:
		fmt.Fprintf(stdout, "Success! Deleted keys with prefix: %s\n", key)
	default:
		fmt.Fprintf(stdout, "Success! Deleted key: %s\n", key)
	}
	return 0
}

func kvExport(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("kv export [options] [PREFIX]", "Exports the keys under a prefix as JSON.", stderr)
	rf := addReadFlags(fs)
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return usageError(fs, fmt.Sprintf("meridian kv export: expected at most one prefix, got %d argument(s)", fs.NArg()))
	}
	q := url.Values{}
	rf.set(q)
	pairs, err := kvList(client(), fs.Arg(0), q)
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
	fs, client := clientFlags("kv import [options] [@file|-|JSON]", "Imports keys from JSON written by kv export: [@file|-|JSON].", stderr)
	dc := fs.String("datacenter", "", "datacenter to write to (default: the agent's)")
	fs.Bool("stale", false, "accepted as Consul's CLI takes it; a write always goes to the leader")
	prefix := fs.String("prefix", "", "prepend this to every imported key")
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	src := "-"
	if fs.NArg() > 1 {
		return usageError(fs, fmt.Sprintf("meridian kv import: expected at most one source, got %d argument(s)", fs.NArg()))
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
		q := url.Values{"flags": {strconv.FormatUint(e.Flags, 10)}}
		if *dc != "" {
			q.Set("dc", *dc)
		}
		path := withQuery(kvPath(*prefix+e.Key), q)
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
