package faultnet

import (
	"bufio"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
)

// echoNode is a stand-in server: it listens on its node's own loopback
// address and echoes every line back.
type echoNode struct {
	id int
	ln net.Listener
	wg sync.WaitGroup
}

func startEcho(t *testing.T, id int) *echoNode {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(SourceIP(id).String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	e := &echoNode{id: id, ln: ln}
	var mu sync.Mutex
	var conns []net.Conn
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			e.wg.Add(1)
			go func() { defer e.wg.Done(); io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		e.wg.Wait()
	})
	return e
}

// dialFrom connects to addr from node's source address (0: from 127.0.0.1).
func dialFrom(t *testing.T, node int, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	if node != 0 {
		d.LocalAddr = &net.TCPAddr{IP: SourceIP(node)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes a line and reads the echo, within a deadline; it
// reports what went wrong instead of failing, for tests that expect it to.
func roundTrip(c net.Conn, line string) error {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func newNet(t *testing.T, ids ...int) (*Net, map[int]string) {
	t.Helper()
	n := New(nil)
	t.Cleanup(func() { n.Close() })
	addrs := map[int]string{}
	for _, id := range ids {
		e := startEcho(t, id)
		a, err := n.Add(id, e.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		addrs[id] = a
	}
	return n, addrs
}

// waitClosed waits until c's peer closed it (a read returns an error other
// than a timeout).
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var b [1]byte
	if _, err := c.Read(b[:]); err == nil {
		t.Fatal("read data from a connection that should be cut")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection was not closed")
	}
}

func TestSourceMapping(t *testing.T) {
	for _, id := range []int{1, 5, 200} {
		got, ok := NodeOf(&net.TCPAddr{IP: SourceIP(id), Port: 1})
		if !ok || got != id {
			t.Fatalf("NodeOf(SourceIP(%d)) = %d, %v", id, got, ok)
		}
	}
	for _, a := range []net.Addr{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 11)},
		&net.TCPAddr{IP: net.IPv6loopback}, &net.UDPAddr{IP: SourceIP(1)}} {
		if id, ok := NodeOf(a); ok {
			t.Fatalf("NodeOf(%v) = %d, want an outside source", a, id)
		}
	}
	if _, err := New(nil).Add(0, "127.0.0.1:1"); err == nil {
		t.Fatal("node 0 accepted")
	}
}

func TestBlockCutsDialerAndHoldsResponses(t *testing.T) {
	testutil.CheckLeaks(t)
	n, addrs := newNet(t, 1, 2)
	c12 := dialFrom(t, 1, addrs[2]) // 1's connection to 2
	c21 := dialFrom(t, 2, addrs[1]) // 2's connection to 1
	for _, c := range []net.Conn{c12, c21} {
		if err := roundTrip(c, "hello"); err != nil {
			t.Fatal(err)
		}
	}

	n.Block(1, 2)
	waitClosed(t, c12)
	// A new connection from 1 to 2 is closed at once.
	waitClosed(t, dialFrom(t, 1, addrs[2]))
	// 2 still reaches 1, but 1's answers (the echo) are held.
	c21.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	io.WriteString(c21, "held\n")
	var b [8]byte
	if k, err := c21.Read(b[:]); err == nil {
		t.Fatalf("read %q over a blocked direction", b[:k])
	}
	c21.SetReadDeadline(time.Time{})
	// Outside clients are never faulted.
	if err := roundTrip(dialFrom(t, 0, addrs[2]), "client"); err != nil {
		t.Fatalf("client: %v", err)
	}

	n.Heal()
	got, err := bufio.NewReader(c21).ReadString('\n')
	if err != nil || got != "held\n" {
		t.Fatalf("held bytes after heal: %q, %v", got, err)
	}
	if err := roundTrip(dialFrom(t, 1, addrs[2]), "again"); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

func TestPartition(t *testing.T) {
	testutil.CheckLeaks(t)
	n, addrs := newNet(t, 1, 2, 3)
	n.Partition([]int{1}, []int{2, 3})
	for _, l := range [][2]int{{1, 2}, {2, 1}, {1, 3}, {3, 1}} {
		if !n.Blocked(l[0], l[1]) {
			t.Fatalf("%d -> %d open", l[0], l[1])
		}
		waitClosed(t, dialFrom(t, l[0], addrs[l[1]]))
	}
	if n.Blocked(2, 3) || n.Blocked(3, 2) {
		t.Fatal("a link inside a group was blocked")
	}
	if err := roundTrip(dialFrom(t, 2, addrs[3]), "inside"); err != nil {
		t.Fatal(err)
	}
	n.Heal()
	if err := roundTrip(dialFrom(t, 1, addrs[3]), "healed"); err != nil {
		t.Fatal(err)
	}
}

// Rules change while connections carry traffic; the race detector and
// Close's wait check the locking and that no goroutine is left.
func TestConcurrentFaultsAndClose(t *testing.T) {
	testutil.CheckLeaks(t)
	n, addrs := newNet(t, 1, 2, 3)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for from := 1; from <= 3; from++ {
		for to := 1; to <= 3; to++ {
			if from == to {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: SourceIP(from)}, Timeout: time.Second}
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := d.Dial("tcp", addrs[to])
					if err != nil {
						continue
					}
					_ = roundTrip(c, "x")
					c.Close()
				}
			}()
		}
	}
	for i := range 200 {
		n.Block(1+i%3, 1+(i+1)%3)
		if i%7 == 0 {
			n.Heal()
		}
	}
	n.Heal()
	close(stop)
	wg.Wait()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Add(4, "127.0.0.1:1"); err == nil {
		t.Fatal("Add after Close succeeded")
	}
}

// While a node is down its proxy refuses connections, as a dead host
// would; Up opens the same address again.
func TestDownRefusesAndUpReopens(t *testing.T) {
	testutil.CheckLeaks(t)
	n, addrs := newNet(t, 1, 2)
	n.Down(2)
	if c, err := net.DialTimeout("tcp", addrs[2], time.Second); err == nil {
		c.Close()
		t.Fatal("a downed proxy accepted a connection")
	}
	if err := n.Up(2); err != nil {
		t.Fatal(err)
	}
	if err := n.Up(2); err != nil {
		t.Fatalf("a second Up: %v", err)
	}
	if err := roundTrip(dialFrom(t, 1, addrs[2]), "back"); err != nil {
		t.Fatal(err)
	}
	if err := n.Up(9); err == nil {
		t.Fatal("Up of an unknown node succeeded")
	}
}
