package harness

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel SIGKILL the child when this process
// dies, so a parent killed without running its defers leaves no replica
// behind. (Strictly, the signal follows the exit of the OS thread that
// forked; the Go runtime keeps its threads for the process's life as long
// as no goroutine exits while locked to one, which this program never
// does.)
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
