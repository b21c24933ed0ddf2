//go:build !linux

package harness

import "os/exec"

// setDeathSignal has no equivalent off Linux: children are still killed
// by the context and the run's defers and signal handler.
func setDeathSignal(cmd *exec.Cmd) {}
