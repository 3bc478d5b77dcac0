//go:build containers

package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// suite is what TestMain prepares once per run and the tests only read: the
// run's ID, which names and labels everything the run creates, and the image
// every container runs. It is the one package variable; it is written before
// any test starts, so tests may run in parallel.
var suite struct {
	run   string
	image string
	// noDocker says why there is no engine to run containers on; every
	// test skips with it.
	noDocker string
}

// dockerfile builds the image from a context holding only the binary.
const dockerfile = `FROM scratch
COPY meridian /meridian
ENTRYPOINT ["/meridian"]
`

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

// runSuite builds the binary and the image, runs the tests and removes the
// image. Containers and networks are removed by each test's cleanup.
func runSuite(m *testing.M) int {
	ctx := context.Background()
	if _, err := docker(ctx, "info", "--format", "{{.ServerVersion}}"); err != nil {
		suite.noDocker = fmt.Sprintf("no usable Docker engine, so no container can run: %v", err)
		fmt.Fprintf(os.Stderr, "containers: %s; every test is skipped\n", suite.noDocker)
		return m.Run()
	}
	removed, err := removeExpired(ctx)
	for _, r := range removed {
		fmt.Fprintf(os.Stderr, "containers: removed %s left by an earlier run\n", r)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "containers: remove what earlier runs left: %v\n", err)
	}

	b := make([]byte, 4)
	rand.Read(b)
	run := hex.EncodeToString(b)
	image, cleanup, err := buildImage(ctx, run)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "containers: %v\n", err)
		return 1
	}
	suite.run, suite.image = run, image
	return m.Run()
}

// buildImage builds a static meridian binary and the image
// meridian-containers:<run> FROM scratch holding only it. cleanup removes the
// image; it is set as soon as there may be something to remove.
func buildImage(ctx context.Context, run string) (image string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "meridian-containers-")
	if err != nil {
		return "", nil, fmt.Errorf("build context: %w", err)
	}
	image = "meridian-containers:" + run
	cleanup = func() {
		os.RemoveAll(dir)
		if _, err := docker(context.Background(), "rmi", "-f", image); err != nil {
			fmt.Fprintf(os.Stderr, "containers: remove image: %v\n", err)
		}
	}
	if err := binary(ctx, filepath.Join(dir, "meridian")); err != nil {
		return "", cleanup, err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", cleanup, fmt.Errorf("build context: %w", err)
	}
	args := append([]string{"build", "--quiet", "--tag", image}, labelArgs(run)...)
	if _, err := docker(ctx, append(args, dir)...); err != nil {
		return "", cleanup, fmt.Errorf("build image: %w", err)
	}
	return image, cleanup, nil
}

// binaryEnv names a prebuilt static meridian binary to test instead of
// building one from this tree.
const binaryEnv = "MERIDIAN_CONTAINERS_BINARY"

// binary writes a static linux meridian binary to path: a copy of the one
// binaryEnv names, or one built from this tree with CGO_ENABLED=0.
func binary(ctx context.Context, path string) error {
	if prebuilt := os.Getenv(binaryEnv); prebuilt != "" {
		b, err := os.ReadFile(prebuilt)
		if err != nil {
			return fmt.Errorf("%s: %w", binaryEnv, err)
		}
		return os.WriteFile(path, b, 0o755)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build meridian: %w", err)
	}
	// No -trimpath: it would miss the build cache the rest of CI fills.
	cmd := exec.CommandContext(ctx, gobin, "build", "-ldflags=-s -w",
		"-o", path, "github.com/meridian/meridian/cmd/meridian")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build meridian: %w\n%s", err, out)
	}
	return nil
}

// newRunHarness is newHarness for the suite's run and image.
func newRunHarness(t testing.TB) *harness {
	if suite.noDocker != "" {
		t.Skip(suite.noDocker)
	}
	if suite.image == "" {
		t.Fatal("no image: TestMain did not run")
	}
	return newHarness(t, suite.run, suite.image)
}
