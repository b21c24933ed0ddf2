//go:build !linux

package main

import "syscall"

// childSysProcAttr: elsewhere than Linux the servers stay in the parent's
// process group (a terminal's Ctrl-C reaches them too, and they shut down
// cleanly) and there is no parent-death signal; the parent's cleanup still
// stops them on every path but its own SIGKILL.
func childSysProcAttr() *syscall.SysProcAttr { return nil }
