//go:build !unix

package checks

import "os/exec"

// killGroupOnCancel keeps exec.CommandContext's default, killing only the
// script's own process: there are no process groups to kill here.
func killGroupOnCancel(cmd *exec.Cmd) {}
