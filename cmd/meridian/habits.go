package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
)

// This file holds what Consul's CLI users expect of every command: a
// mistake gets one line and a hint, not the whole usage, and reads take
// -datacenter and -stale.

// cmdWord is one word of a command's name, as opposed to its synopsis
// ("[options]", "KEY", "-flag").
var cmdWord = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// commandName is the command part of a FlagSet's name: "kv get" of
// "kv get [options] KEY".
func commandName(fs *flag.FlagSet) string {
	var words []string
	for _, w := range strings.Fields(fs.Name()) {
		if !cmdWord.MatchString(w) {
			break
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}

// usageError prints msg and a hint where to find the usage, as Consul's
// CLI does, and answers the exit code of a usage error.
func usageError(fs *flag.FlagSet, msg string) int {
	fmt.Fprintf(fs.Output(), "%s\nsee meridian %s -h\n", msg, commandName(fs))
	return 1
}

// parseFlags parses args into fs. -h prints the whole usage (answering
// false and 0); a bad flag prints one line and a hint (false and 1).
func parseFlags(fs *flag.FlagSet, args []string) (ok bool, code int) {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case err == flag.ErrHelp:
		usage()
		return false, 0
	case err != nil:
		return false, usageError(fs, err.Error())
	}
	return true, 0
}

// readFlags are the flags of a command that reads: which datacenter to
// ask and whether a follower may answer.
type readFlags struct {
	dc    *string
	stale *bool
}

func addReadFlags(fs *flag.FlagSet) readFlags {
	return readFlags{
		dc:    fs.String("datacenter", "", "datacenter to ask (default: the agent's)"),
		stale: fs.Bool("stale", false, "let any server answer, not only the leader (faster, may be stale)"),
	}
}

// set adds the flags' query parameters to q.
func (r readFlags) set(q url.Values) {
	if *r.dc != "" {
		q.Set("dc", *r.dc)
	}
	if r.stale != nil && *r.stale {
		q.Set("stale", "")
	}
}

// withQuery appends q to path; a parameter with an empty value is sent
// bare ("?recurse"), as the agent takes flags.
func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	enc := q.Encode()
	enc = strings.ReplaceAll(enc+"&", "=&", "&")
	return path + "?" + strings.TrimSuffix(enc, "&")
}
