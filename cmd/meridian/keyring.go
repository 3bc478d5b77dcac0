package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
)

// runKeygen prints a new gossip encryption key: 32 random bytes, base64.
func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs, _ := clientFlags("keygen", "Prints a new gossip encryption key (32 random bytes, base64) for encrypt or keyring -install.", stderr)
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fail(stderr, "keygen", err)
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key))
	return 0
}

// keyringResponse is one pool's answer of /v1/operator/keyring.
type keyringResponse struct {
	WAN         bool
	Datacenter  string
	Keys        map[string]int
	PrimaryKeys map[string]int
	NumNodes    int
}

// runKeyring lists and rotates the gossip keys of the cluster through the
// agent's /v1/operator/keyring, as `consul keyring` does.
func runKeyring(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("keyring [options]", "Lists, installs, makes primary and removes gossip encryption keys on every member of the gossip pools: through a server, the WAN pool and every datacenter's LAN pool; through a client, its LAN pool.", stderr)
	list := fs.Bool("list", false, "list the keys and how many members hold each")
	install := fs.String("install", "", "install KEY (base64) on every member, without using it yet")
	use := fs.String("use", "", "make KEY, installed everywhere, the key every member sends with")
	remove := fs.String("remove", "", "remove KEY, no longer primary, from every member")
	localOnly := fs.Bool("local-only", false, "with -list: this agent's own keyring only")
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	n := 0
	for _, set := range []bool{*list, *install != "", *use != "", *remove != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fail(stderr, "keyring", errors.New("give exactly one of -list, -install, -use and -remove"))
	}
	if *localOnly && !*list {
		return fail(stderr, "keyring", errors.New("-local-only goes with -list only"))
	}
	c := client()
	if *list {
		path := "/v1/operator/keyring"
		if *localOnly {
			path += "?local-only=1"
		}
		fmt.Fprintln(stdout, "==> Gathering installed encryption keys...")
		var resp []keyringResponse
		if err := c.do("GET", path, &resp); err != nil {
			return fail(stderr, "keyring", err)
		}
		for _, r := range resp {
			name := r.Datacenter + " (LAN)"
			if r.WAN {
				name = "WAN"
			}
			fmt.Fprintf(stdout, "\n%s:\n", name)
			keys := make([]string, 0, len(r.Keys))
			for k := range r.Keys {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				primary := ""
				if r.PrimaryKeys[k] > 0 {
					primary = fmt.Sprintf(" (primary on %d)", r.PrimaryKeys[k])
				}
				fmt.Fprintf(stdout, "  %s [%d/%d]%s\n", k, r.Keys[k], r.NumNodes, primary)
			}
		}
		return 0
	}
	method, key, verb := http.MethodPost, *install, "Installing new"
	switch {
	case *use != "":
		method, key, verb = http.MethodPut, *use, "Changing primary"
	case *remove != "":
		method, key, verb = http.MethodDelete, *remove, "Removing"
	}
	fmt.Fprintf(stdout, "==> %s gossip encryption key...\n", verb)
	if err := c.sendJSON(method, "/v1/operator/keyring", map[string]string{"Key": key}); err != nil {
		return fail(stderr, "keyring", err)
	}
	fmt.Fprintln(stdout, "==> Done")
	return 0
}
