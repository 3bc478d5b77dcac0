package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"

	"github.com/meridian/meridian/httpapi"
)

func runEvent(args []string, stdout, stderr io.Writer) int {
	fs, client := clientFlags("event -name NAME [options] [PAYLOAD]",
		"Fires a user event to every agent of the datacenter (or of -datacenter) whose node name, services and tags match the filters; agents keep the last 256 (GET /v1/event/list, meridian watch -type event). Name and payload together are at most 512 bytes.", stderr)
	name := fs.String("name", "", "the event's name (required)")
	node := fs.String("node", "", "regular expression: only agents whose node name matches record the event")
	service := fs.String("service", "", "regular expression: only agents with a local service (name or ID) that matches record the event")
	tag := fs.String("tag", "", "regular expression on the tags of the -service matched (needs -service)")
	dc := fs.String("datacenter", "", "datacenter to fire the event in (default the agent's)")
	fs.Bool("stale", false, "accepted as Consul's CLI takes it; firing an event is a write")
	if ok, code := parseArgs(fs, args, -1, ""); !ok {
		return code
	}
	switch {
	case *name == "":
		fmt.Fprintln(stderr, "meridian event: -name is required (meridian event -name deploy [PAYLOAD])")
		return 1
	case fs.NArg() > 1:
		fmt.Fprintf(stderr, "meridian event: expected at most one PAYLOAD argument, got %d (quote it)\n", fs.NArg())
		return 1
	case *tag != "" && *service == "":
		fmt.Fprintln(stderr, "meridian event: -tag needs -service")
		return 1
	}
	q := url.Values{}
	for k, v := range map[string]string{"node": *node, "service": *service, "tag": *tag, "dc": *dc} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/v1/event/fire/" + url.PathEscape(*name)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var payload []byte
	if fs.NArg() == 1 {
		payload = []byte(fs.Arg(0))
	}
	ev, err := fireEvent(client(), path, payload)
	if err != nil {
		return fail(stderr, "event", err)
	}
	fmt.Fprintf(stdout, "Event ID: %s\n", ev.ID)
	return 0
}

// fireEvent sends PUT path with payload and decodes the fired event.
func fireEvent(c *httpClient, path string, payload []byte) (*httpapi.UserEvent, error) {
	code, body, err := c.send("PUT", path, payload)
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, statusErr("PUT", path, code, body)
	}
	var ev httpapi.UserEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("decode answer of %s: %w", path, err)
	}
	return &ev, nil
}
