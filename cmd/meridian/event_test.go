package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/testcluster"
)

func TestEventCommand(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	addr := "-http-addr=" + c.Servers[0].HTTPAddr()
	var out, errb bytes.Buffer
	if code := runEvent([]string{addr, "-name", "deploy", "-node", "server", "v42"}, &out, &errb); code != 0 {
		t.Fatalf("event -name deploy v42 = exit %d, stderr %q", code, errb.String())
	}
	id, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "Event ID: ")
	if !ok || len(id) != 36 {
		t.Fatalf("event printed %q, want Event ID: UUID", out.String())
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		evs, _, err := c.Servers[0].API().Event().List("deploy", nil)
		if err != nil {
			return err
		}
		if len(evs) != 1 || evs[0].ID != id || string(evs[0].Payload) != "v42" || evs[0].NodeFilter != "server" {
			return fmt.Errorf("List(deploy) = %+v, want %s with payload v42 and node filter server", evs, id)
		}
		return nil
	})

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"v1"}, "-name is required"},
		{[]string{"-name", "deploy", strings.Repeat("x", 100<<10)}, "the limit is 512 bytes"},
		{[]string{"-name", "deploy", "-tag", "v1"}, "-tag needs -service"},
		{[]string{"-name", "deploy", "-service", "("}, "not a regular expression"},
		{[]string{"-name", "deploy", "a", "b"}, "at most one PAYLOAD"},
	} {
		out.Reset()
		errb.Reset()
		code := runEvent(append([]string{addr}, tc.args...), &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), tc.want) || strings.Count(strings.TrimSpace(errb.String()), "\n") > 0 {
			t.Errorf("event %.60q = exit %d, stderr %q; want exit 1 and one line with %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
