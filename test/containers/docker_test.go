//go:build containers

package containers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Labels put on every container, network and image the suite creates, so
// that a run killed before its cleanup (a -timeout panic, a SIGKILL) leaves
// nothing a later run cannot find and remove.
const (
	// labelSuite marks a resource as the suite's.
	labelSuite = "meridian.containers"
	// labelRun is the run's ID (suite.run).
	labelRun = "meridian.containers.run"
	// labelExpires is the Unix time after which no run can still use the
	// resource, so any run may remove it.
	labelExpires = "meridian.containers.expires"
)

// resourceTTL is how long a resource may belong to a live run: longer than
// any -timeout the suite runs under (.ci/run gives it 15m).
const resourceTTL = time.Hour

// dockerTimeout bounds one docker CLI command; an image build of one binary
// takes seconds, everything else well under one.
const dockerTimeout = 2 * time.Minute

// wanOctet and the datacenter octets are the third octet of the /24 subnets
// tried first, 10.231.<octet>.0/24; another octet is picked when one is taken
// (by a concurrent run, or by a network of someone else).
const (
	subnetBase = "10.231."
	wanOctet   = 9
)

// docker runs the docker CLI and returns its trimmed standard output. The
// error names the command and carries docker's standard error.
func docker(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(cmd.Environ(), "DOCKER_BUILDKIT=0") // no buildx here; the legacy builder is enough for FROM scratch
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// labelArgs are the --label flags of a resource of run.
func labelArgs(run string) []string {
	expires := time.Now().Add(resourceTTL).Unix()
	return []string{
		"--label", labelSuite + "=1",
		"--label", labelRun + "=" + run,
		"--label", labelExpires + "=" + strconv.FormatInt(expires, 10),
	}
}

// removeExpired removes the containers, networks and images of earlier runs
// whose labelExpires has passed, and returns what it removed. Resources of a
// run that may still be going are left alone.
func removeExpired(ctx context.Context) ([]string, error) {
	now := time.Now().Unix()
	expired := func(label string) bool {
		at, err := strconv.ParseInt(strings.TrimSpace(label), 10, 64)
		return err != nil || at < now // unreadable: ours, and broken
	}
	var removed []string
	var errs []error
	list := func(args ...string) [][2]string {
		out, err := docker(ctx, args...)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		var rows [][2]string
		for line := range strings.Lines(out) {
			id, label, _ := strings.Cut(strings.TrimSpace(line), " ")
			if id != "" {
				rows = append(rows, [2]string{id, label})
			}
		}
		return rows
	}
	remove := func(kind string, rows [][2]string, rm ...string) {
		for _, r := range rows {
			if !expired(r[1]) {
				continue
			}
			if _, err := docker(ctx, append(rm, r[0])...); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, kind+" "+r[0])
		}
	}
	filter := "label=" + labelSuite
	remove("container", list("ps", "-a", "--filter", filter, "--format", `{{.ID}} {{.Label "`+labelExpires+`"}}`), "rm", "-f", "-v")
	remove("network", list("network", "ls", "--filter", filter, "--format", `{{.ID}} {{.Label "`+labelExpires+`"}}`), "network", "rm")
	var images [][2]string
	for _, r := range list("images", "-q", "--filter", filter) {
		out, err := docker(ctx, "image", "inspect", "--format", `{{index .Config.Labels "`+labelExpires+`"}}`, r[0])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		images = append(images, [2]string{r[0], out})
	}
	images = slices.CompactFunc(images, func(a, b [2]string) bool { return a[0] == b[0] })
	remove("image", images, "rmi", "-f")
	return removed, errors.Join(errs...)
}

// harness creates Docker networks and containers for one test and removes
// all of them when the test ends, pass or fail, after dumping every
// container's log into the test log if the test failed.
type harness struct {
	t     testing.TB
	run   string
	image string

	mu         sync.Mutex
	containers []*container
	networks   []*network
}

// newHarness returns a harness for t that runs containers of image.
func newHarness(t testing.TB, run, image string) *harness {
	h := &harness{t: t, run: run, image: image}
	t.Cleanup(h.cleanup)
	return h
}

func (h *harness) cleanup() {
	ctx := context.Background()
	h.mu.Lock()
	containers, networks := h.containers, h.networks
	h.mu.Unlock()
	if h.t.Failed() {
		for _, c := range containers {
			out, err := c.logs(ctx)
			if err != nil {
				h.t.Logf("logs of %s: %v", c.name, err)
				continue
			}
			h.t.Logf("==== docker logs %s ====\n%s\n==== end of %s ====", c.name, out, c.name)
		}
	}
	if len(containers) > 0 {
		rm := []string{"rm", "-f", "-v"}
		for _, c := range containers {
			rm = append(rm, c.name)
		}
		if _, err := docker(ctx, rm...); err != nil {
			h.t.Errorf("remove containers: %v", err)
		}
	}
	if len(networks) > 0 {
		rm := []string{"network", "rm"}
		for _, n := range networks {
			rm = append(rm, n.name)
		}
		if _, err := docker(ctx, rm...); err != nil {
			h.t.Errorf("remove networks: %v", err)
		}
	}
}

// network is a user-defined bridge network with a /24 subnet of its own.
// The host is on every such bridge, so the test process reaches any
// container at its IP on it; containers on different bridges cannot reach
// each other (Docker's isolation rules drop forwarded traffic between them).
type network struct {
	name   string
	subnet netip.Prefix
}

// ip is the address of host number n (1-254) in the subnet.
func (n *network) ip(host int) string {
	a := n.subnet.Addr().As4()
	a[3] = byte(host)
	return netip.AddrFrom4(a).String()
}

func (n *network) String() string { return n.name + " " + n.subnet.String() }

// network creates the network named meridian-<run>-<role> on the subnet
// 10.231.<prefer>.0/24, or on another free 10.231.x.0/24 when that one
// overlaps a network that exists.
func (h *harness) network(t testing.TB, role string, prefer int) *network {
	t.Helper()
	name := fmt.Sprintf("meridian-%s-%s", h.run, role)
	octets := []int{prefer}
	for _, o := range rand.Perm(240) { // 10.231.10-249
		if o+10 != prefer {
			octets = append(octets, o+10)
		}
	}
	var lastErr error
	for _, o := range octets[:20] {
		subnet := netip.MustParsePrefix(subnetBase + strconv.Itoa(o) + ".0/24")
		args := append([]string{"network", "create", "--driver", "bridge", "--subnet", subnet.String()}, labelArgs(h.run)...)
		_, err := docker(context.Background(), append(args, name)...)
		if err == nil {
			n := &network{name: name, subnet: subnet}
			h.mu.Lock()
			h.networks = append(h.networks, n)
			h.mu.Unlock()
			return n
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	t.Fatalf("create network %s: %v", name, lastErr)
	return nil
}

// attachment is a container's fixed address on a network.
type attachment struct {
	net *network
	ip  string
}

// container is one container of the harness, created with its networks
// attached at fixed IPs. It is not started by create.
type container struct {
	name string
	nets []attachment
}

// create creates the container meridian-<run>-<name> running the image with
// args, attached to every network of nets at its IP: the first with
// `docker create --network --ip`, the others with `docker network connect
// --ip` before it starts, so all its interfaces exist when its process
// starts. (A container created on --network none cannot be connected to
// anything, so the first network is given at create.)
func (h *harness) create(t testing.TB, name string, nets []attachment, args ...string) *container {
	t.Helper()
	c := &container{name: fmt.Sprintf("meridian-%s-%s", h.run, name), nets: nets}
	ctx := context.Background()
	create := []string{"create", "--name", c.name, "--hostname", name,
		"--network", nets[0].net.name, "--ip", nets[0].ip}
	create = append(create, labelArgs(h.run)...)
	create = append(create, h.image)
	if _, err := docker(ctx, append(create, args...)...); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	h.mu.Lock()
	h.containers = append(h.containers, c)
	h.mu.Unlock()
	for _, a := range nets[1:] {
		if _, err := docker(ctx, "network", "connect", "--ip", a.ip, a.net.name, c.name); err != nil {
			t.Fatalf("attach %s to %s: %v", name, a.net, err)
		}
	}
	return c
}

// agentConfigFile is where an agent finds the config file of a cluster
// that has one (clusterSpec.config).
const agentConfigFile = "/etc/meridian/meridian.yaml"

// writeFile puts a file holding content at path (absolute) in the
// container, before it starts. The image is FROM scratch, with no directory
// to copy into, so the file goes in with the directories above it: the
// tree is written in a temporary directory of the test and its top
// directory copied into / (docker cp). A copy, unlike a bind mount, works
// whichever host the engine runs on, and the file stays with the container
// across kills and restarts.
func (c *container) writeFile(t testing.TB, path, content string) {
	t.Helper()
	rel := strings.TrimPrefix(path, "/")
	top, _, nested := strings.Cut(rel, "/")
	if !strings.HasPrefix(path, "/") || !nested {
		t.Fatalf("write %s in %s: want an absolute path below a directory", path, c.name)
	}
	root := t.TempDir()
	host := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		t.Fatalf("write %s in %s: %v", path, c.name, err)
	}
	if err := os.WriteFile(host, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s in %s: %v", path, c.name, err)
	}
	if _, err := docker(context.Background(), "cp", filepath.Join(root, top), c.name+":/"); err != nil {
		t.Fatalf("write %s in %s: %v", path, c.name, err)
	}
}

// start starts the container (again, after kill: same IPs, same file
// system, so an agent finds its data dir as it left it).
func (c *container) start(t testing.TB) {
	t.Helper()
	if _, err := docker(context.Background(), "start", c.name); err != nil {
		t.Fatalf("start: %v", err)
	}
}

// kill sends SIGKILL to the container's process, as a crash or a power cut
// would: no graceful leave.
func (c *container) kill(t testing.TB) {
	t.Helper()
	if _, err := docker(context.Background(), "kill", c.name); err != nil {
		t.Fatalf("kill: %v", err)
	}
}

// restart kills the container and starts it again.
func (c *container) restart(t testing.TB) {
	t.Helper()
	c.kill(t)
	c.start(t)
}

// disconnect removes the container's interface on n: a network partition
// for everything that reached it through n.
func (c *container) disconnect(t testing.TB, n *network) {
	t.Helper()
	if _, err := docker(context.Background(), "network", "disconnect", n.name, c.name); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
}

// connect attaches the container to n again at the IP it was created with.
func (c *container) connect(t testing.TB, n *network) {
	t.Helper()
	for _, a := range c.nets {
		if a.net == n {
			if _, err := docker(context.Background(), "network", "connect", "--ip", a.ip, n.name, c.name); err != nil {
				t.Fatalf("connect: %v", err)
			}
			return
		}
	}
	t.Fatalf("connect %s to %s: it was never on it", c.name, n)
}

// exited returns a permanent error saying how the container's process
// ended if it is not running, and nil if it runs (or docker cannot tell).
// A wait for an agent calls it when the agent does not answer, to fail at
// once on an agent that refused its command line or crashed.
func (c *container) exited() error {
	out, err := docker(context.Background(), "inspect", "--format", "{{.State.Status}}|{{.State.ExitCode}}|{{.State.Error}}", c.name)
	if err != nil {
		return nil
	}
	state := strings.SplitN(out, "|", 3)
	if len(state) != 3 || state[0] == "running" || state[0] == "restarting" {
		return nil
	}
	how := "exit code " + state[1]
	if state[2] != "" {
		how += ", " + state[2]
	}
	return permanent(fmt.Errorf("container %s is %s (%s); its log ends:\n%s", c.name, state[0], how, c.tail(20)))
}

// tail is the last n lines of the container's log, for a failure message.
func (c *container) tail(n int) string {
	out, err := exec.Command("docker", "logs", "--tail", strconv.Itoa(n), c.name).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(docker logs: %v)", err)
	}
	return string(out)
}

// logs is everything the container wrote to stdout and stderr, across
// restarts.
func (c *container) logs(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "logs", c.name)
	out, err := cmd.CombinedOutput() // the agent logs to stderr, the banner to stdout
	if err != nil {
		return "", fmt.Errorf("docker logs %s: %w: %s", c.name, err, out)
	}
	return string(out), nil
}
