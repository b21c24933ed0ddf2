// Package systemstest holds what the system drivers' tests share: free
// loopback addresses for a cluster. It is imported by tests only.
package systemstest

import (
	"net"
	"testing"
)

// FreeAddrs returns n loopback addresses whose ports were free a moment
// ago: all n listeners are held open together so the ports differ, then
// closed for the replicas to bind.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs
}
