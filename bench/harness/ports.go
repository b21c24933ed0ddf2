package harness

import (
	"fmt"
	"net"
)

// FreePorts returns n distinct loopback addresses (127.0.0.1:port) that
// were free a moment ago: it listens on port 0 n times, keeping every
// listener open until all are chosen so the kernel cannot hand out one port
// twice, then closes them for the caller to bind. Another process could
// take a port in between; on one benchmark machine that is rare, and the
// failing start is reported, not hidden.
//
// These are the only ports the harness chooses. A system that needs more
// than one port per replica picks its extra ones itself: deriving them
// (port+1000 and the like) could collide with ports handed out here.
func FreePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}
