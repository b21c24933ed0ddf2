package faultnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
)

// SourceIP is the loopback address node dials its peers from:
// 127.0.0.(10+node). Linux routes all of 127/8 to the loopback interface,
// so any of them can be bound without setup.
func SourceIP(node int) net.IP { return net.IPv4(127, 0, 0, byte(10+node)) }

// NodeOf maps a connection's remote address back to the node that dialed
// from it; ok is false for any other source (clients, 127.0.0.1).
func NodeOf(remote net.Addr) (node int, ok bool) {
	tcp, isTCP := remote.(*net.TCPAddr)
	if !isTCP {
		return 0, false
	}
	ip := tcp.IP.To4()
	if ip == nil || ip[0] != 127 || ip[1] != 0 || ip[2] != 0 || ip[3] <= 10 || ip[3] > 10+maxNodes {
		return 0, false
	}
	return int(ip[3]) - 10, true
}

// maxNodes bounds node IDs so that SourceIP stays inside one byte.
const maxNodes = 200

type link struct{ from, to int }

// Net owns one proxy per node and the faults of the links between nodes.
//
// Concurrency: safe for concurrent use.
type Net struct {
	log *slog.Logger

	mu      sync.Mutex
	changed *sync.Cond // broadcast when links open or a connection closes
	proxies map[int]*proxy
	blocked map[link]bool
	closed  bool
}

// New returns an empty Net; logger may be nil.
func New(logger *slog.Logger) *Net {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Net{log: logger, proxies: map[int]*proxy{}, blocked: map[link]bool{}}
	n.changed = sync.NewCond(&n.mu)
	return n
}

// Add starts the proxy in front of node, whose server listens on target,
// and returns the proxy's address: the address every peer is to dial.
func (n *Net) Add(node int, target string) (string, error) {
	if node < 1 || node > maxNodes {
		return "", fmt.Errorf("faultnet: node %d out of range [1, %d]", node, maxNodes)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return "", errors.New("faultnet: closed")
	}
	if _, dup := n.proxies[node]; dup {
		return "", fmt.Errorf("faultnet: node %d already has a proxy", node)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("faultnet: %w", err)
	}
	p := &proxy{net: n, node: node, target: target, addr: ln.Addr().String(), ln: ln, conns: map[*pair]struct{}{}}
	n.proxies[node] = p
	p.wg.Add(1)
	go p.accept(ln)
	return p.addr, nil
}

// Block cuts the link from → to. Connections from dialed to to are closed
// at once (a real partition breaks them after timeouts; closing is the
// same outcome, sooner) and new ones are closed as soon as they are
// accepted. On connections to dialed to from, the bytes from sends back
// (responses) are held until the link opens, while to's requests still
// flow: to can still reach from.
func (n *Net) Block(from, to int) {
	n.mu.Lock()
	n.blocked[link{from, to}] = true
	ps := make([]*proxy, 0, len(n.proxies))
	for _, p := range n.proxies {
		ps = append(ps, p)
	}
	n.mu.Unlock()
	for _, p := range ps {
		if p.node == to {
			p.cut(from)
		}
	}
}

// Partition blocks every link between nodes of different groups, both
// ways; links within a group stay as they are.
func (n *Net) Partition(groups ...[]int) {
	for i, a := range groups {
		for j, b := range groups {
			if i == j {
				continue
			}
			for _, x := range a {
				for _, y := range b {
					n.Block(x, y)
				}
			}
		}
	}
}

// Heal opens every link.
func (n *Net) Heal() {
	n.mu.Lock()
	clear(n.blocked)
	n.changed.Broadcast()
	n.mu.Unlock()
}

// waitOpen returns once from → to is open, or false if c closed first.
// Connections of outside clients (node 0) are never held.
func (n *Net) waitOpen(from, to int, c *pair) bool {
	if from == 0 || to == 0 {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for n.blocked[link{from, to}] && !c.isClosed() {
		n.changed.Wait()
	}
	return !c.isClosed()
}

// Blocked reports whether from → to is blocked.
func (n *Net) Blocked(from, to int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.blocked[link{from, to}]
}

// Close stops every proxy and closes every proxied connection, and
// returns once their goroutines have ended.
func (n *Net) Close() error {
	n.mu.Lock()
	n.closed = true
	ps := n.proxies
	n.proxies = map[int]*proxy{}
	n.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
	return nil
}

// proxy forwards the connections accepted on ln to its node's server.
type proxy struct {
	net    *Net
	node   int
	target string
	addr   string // the proxy's address, kept across Down and Up
	wg     sync.WaitGroup

	mu    sync.Mutex
	ln    net.Listener // nil while the node is down
	conns map[*pair]struct{}
	done  bool
}

// Down closes node's proxy listener while its server is down, so that
// dialers are refused, as they would be by a dead host, instead of being
// accepted and cut off. Up listens again on the same address.
func (n *Net) Down(node int) {
	n.mu.Lock()
	p := n.proxies[node]
	n.mu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// Up reopens node's proxy listener after Down.
func (n *Net) Up(node int) error {
	n.mu.Lock()
	p := n.proxies[node]
	n.mu.Unlock()
	if p == nil {
		return fmt.Errorf("faultnet: no proxy for node %d", node)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil || p.done {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("faultnet: reopening %s: %w", p.addr, err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.accept(ln)
	return nil
}

// pair is one proxied connection: in from the dialer, out to the node.
type pair struct {
	net     *Net
	from    int // the dialing node, 0 for an outside client
	in, out net.Conn
	once    sync.Once
	closed  atomic.Bool
}

// close closes both sides and wakes a direction held by waitOpen.
func (c *pair) close() {
	c.once.Do(func() {
		c.in.Close()
		c.out.Close()
		c.closed.Store(true)
		c.net.mu.Lock()
		c.net.changed.Broadcast()
		c.net.mu.Unlock()
	})
}

func (c *pair) isClosed() bool { return c.closed.Load() }

func (p *proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		from, _ := NodeOf(in.RemoteAddr())
		if from != 0 && p.net.Blocked(from, p.node) {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close() // the server is not (yet) listening: Down/Up avoid this
			continue
		}
		c := &pair{net: p.net, from: from, in: in, out: out}
		p.mu.Lock()
		if p.done {
			p.mu.Unlock()
			c.close()
			return
		}
		p.conns[c] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(c, out, in, from, p.node)
		go p.pipe(c, in, out, p.node, from)
	}
}

// pipe copies src to dst, holding the bytes while the link sender →
// receiver is blocked, until either side fails; then it closes the pair so
// that both directions end together, as a broken TCP connection does.
func (p *proxy) pipe(c *pair, dst, src net.Conn, sender, receiver int) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.net.waitOpen(sender, receiver, c) {
				break
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	c.close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// cut closes the connections from dialed to this proxy's node.
func (p *proxy) cut(from int) {
	p.mu.Lock()
	var victims []*pair
	for c := range p.conns {
		if c.from == from {
			victims = append(victims, c)
		}
	}
	p.mu.Unlock()
	for _, c := range victims {
		p.net.log.Debug("faultnet: cutting a connection", "from", from, "to", p.node)
		c.close()
	}
}

func (p *proxy) close() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	p.done = true
	conns := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
}
