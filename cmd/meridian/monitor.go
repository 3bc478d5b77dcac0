package main

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
)

func runMonitor(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("monitor [options]",
		"Streams the agent's log: its recent lines, then live ones, until interrupted. The level\nasked for here does not change the agent's own log level.", stderr)
	level := fs.String("log-level", "info", "lowest level to show: trace, debug, info, warn or error")
	asJSON := fs.Bool("log-json", false, "print JSON lines")
	if ok, code := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	q := url.Values{"loglevel": {*level}}
	if *asJSON {
		q.Set("logjson", "true")
	}
	resp, err := streamRequest(client(), "GET", "/v1/agent/monitor?"+q.Encode(), nil, -1)
	if err != nil {
		return fail(stderr, "monitor", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Fprintln(stdout, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return fail(stderr, "monitor", fmt.Errorf("stream ended: %w", err))
	}
	fmt.Fprintln(stderr, "meridian monitor: the agent closed the stream")
	return 0
}
