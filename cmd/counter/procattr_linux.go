//go:build linux

package main

import "syscall"

// childSysProcAttr sets up a server process of the demo or the tests. Its
// own process group keeps a terminal's Ctrl-C to the parent, which then
// stops the servers itself, in order and narrated. Pdeathsig kills the
// server should the parent die without cleaning up (SIGKILL, a crash), so
// that no server outlives it holding a port. (Pdeathsig follows the thread
// that started the child; the Go runtime never ends its threads unless a
// goroutine exits while locked to one, which this program never does.)
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
