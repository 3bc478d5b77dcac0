package testcluster

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// BurnCPU makes the host's CPUs oversubscribed factor times over for the
// rest of the test, as on a busy CI machine with a load average of factor
// times its cores: it starts spinning processes for what the load the host
// already has (its one-minute load average, on Linux) lacks of factor
// times NumCPU, so that a test on a shared, busy machine is not loaded
// twice over. The agents under test then get their share of the CPUs from
// the kernel's scheduler like any process of such a host. The burners are
// processes, not goroutines, on purpose: goroutines spinning in the test's
// own process would queue every goroutine of the agents behind them in
// Go's scheduler, a harsher and different load than a busy host's. It
// returns at once; the burners are killed in the test's cleanup. A test on
// a system without /bin/sh is skipped, saying so.
func BurnCPU(t testing.TB, factor int) {
	t.Helper()
	if factor < 1 {
		t.Fatalf("BurnCPU factor %d, want at least 1", factor)
	}
	sh, err := exec.LookPath("/bin/sh")
	if err != nil {
		t.Skipf("BurnCPU runs its burners with /bin/sh, which is missing: %v", err)
	}
	want := factor * runtime.NumCPU()
	ambient := loadAverage()
	burners := max(0, want-ambient)
	t.Logf("BurnCPU: load average %d, %d burners for %d runnable on %d CPUs", ambient, burners, want, runtime.NumCPU())
	for range burners {
		burner := exec.Command(sh, "-c", "while :; do :; done")
		if err := burner.Start(); err != nil {
			t.Fatalf("start a CPU burner: %v", err)
		}
		t.Cleanup(func() {
			_ = burner.Process.Kill()
			_ = burner.Wait()
		})
	}
}

// loadAverage is the host's one-minute load average, rounded, or 0 where
// /proc/loadavg does not say.
func loadAverage() int {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0
	}
	avg, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return 0
	}
	return int(avg + 0.5)
}
