//go:build unix

package checks

import (
	"os/exec"
	"syscall"
)

// killGroupOnCancel puts the script in a process group of its own and makes
// the context's end kill the whole group, so that the children a script
// started (a shell's pipeline, a backgrounded sleep) do not outlive it.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The group's id is the leader's pid, which cannot be reused before
		// Wait reaps the leader, and Cancel is only called before that.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
