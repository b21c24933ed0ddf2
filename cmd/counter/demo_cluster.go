package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftkit/raftkit/examples/counter"
	"github.com/raftkit/raftkit/transport/tcp"
)

// cluster runs counter servers as child processes of this one, on
// loopback ports, with a client to talk to them: the demo's cluster and the
// end-to-end tests'.
//
// Concurrency: start, kill and stop of one node must not race each other;
// everything else is safe for concurrent use.
type cluster struct {
	exe    string // the counter binary
	dir    string // each node's data directory and log file go under it
	group  string
	addrs  []string
	extra  []string // further server flags, such as --tick
	nodes  []*serverProc
	caller *tcp.Client
	client *counter.Client
}

// serverProc is one node: its address and files, and the process that
// currently runs it, if any.
type serverProc struct {
	name    string // node1, node2, ...: node IDs are positions in addrs, from 1
	addr    string
	http    string // its --http address, or "" for none
	dataDir string
	logPath string

	mu     sync.Mutex
	cur    *child // the latest process; nil before the first start
	downOK bool   // the latest process was stopped on purpose
}

// child is one process of a node.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // cmd.Wait's result; set before done closes
}

func newCluster(exe, dir, group string, addrs []string, extra ...string) *cluster {
	c := &cluster{exe: exe, dir: dir, group: group, addrs: addrs, extra: extra}
	for i, a := range addrs {
		name := fmt.Sprintf("node%d", i+1)
		c.nodes = append(c.nodes, &serverProc{name: name, addr: a,
			dataDir: filepath.Join(dir, name), logPath: filepath.Join(dir, name+".log")})
	}
	c.caller = tcp.NewClient(tcp.ClientOptions{DialTimeout: time.Second})
	c.client = counter.NewClient(c.caller, addrs, group)
	return c
}

// serverArgs is the command line that runs node i.
func (c *cluster) serverArgs(i int) []string {
	n := c.nodes[i]
	args := []string{"server", "--data", n.dataDir, "--group", c.group, "--addr", n.addr,
		"--peers", strings.Join(c.addrs, ","), "--log-format", "json"}
	if n.http != "" {
		args = append(args, "--http", n.http)
	}
	return append(args, c.extra...)
}

// start runs node i, appending its stdout and stderr (its JSON log) to its
// log file, and returns the process ID.
func (c *cluster) start(i int) (int, error) {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cur != nil && !n.cur.exited() {
		return 0, fmt.Errorf("%s is already running (pid %d)", n.name, n.cur.cmd.Process.Pid)
	}
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("starting %s: %w", n.name, err)
	}
	// The child writes to the file directly: no copying goroutine that
	// could hold up Wait or lose the last lines of a crash.
	defer f.Close()
	cmd := exec.Command(c.exe, c.serverArgs(i)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", n.name, err)
	}
	ch := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		ch.err = cmd.Wait()
		close(ch.done)
	}()
	n.cur, n.downOK = ch, false
	return cmd.Process.Pid, nil
}

func (ch *child) exited() bool {
	select {
	case <-ch.done:
		return true
	default:
		return false
	}
}

// running reports whether node i has a live process.
func (c *cluster) running(i int) bool {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cur != nil && !n.cur.exited()
}

// pid is node i's latest process ID, or 0.
func (c *cluster) pid(i int) int {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cur == nil {
		return 0
	}
	return n.cur.cmd.Process.Pid
}

// checkExits returns an error naming a node whose process ended without
// being stopped on purpose (a crash, a port already taken).
func (c *cluster) checkExits() error {
	for _, n := range c.nodes {
		n.mu.Lock()
		cur, ok := n.cur, n.downOK
		n.mu.Unlock()
		if cur != nil && !ok && cur.exited() {
			return fmt.Errorf("%s (pid %d) exited unexpectedly (%v); its last log line: %s",
				n.name, cur.cmd.Process.Pid, cur.err, lastLine(n.logPath))
		}
	}
	return nil
}

// lastLine is the last non-empty line of a file, to quote a dead server.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(unreadable: %v)", err)
	}
	s := strings.TrimSpace(string(b))
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// kill ends node i with SIGKILL, a crash as far as raft is concerned, and
// reaps the process.
func (c *cluster) kill(i int) error { return c.stopNode(i, 0) }

// stopNode sends SIGTERM and waits up to grace for a clean exit, then
// SIGKILL; a zero grace sends SIGKILL at once. It returns once the process
// is reaped.
func (c *cluster) stopNode(i int, grace time.Duration) error {
	n := c.nodes[i]
	n.mu.Lock()
	cur := n.cur
	n.downOK = true
	n.mu.Unlock()
	if cur == nil || cur.exited() {
		return nil
	}
	if grace > 0 && cur.cmd.Process.Signal(syscall.SIGTERM) == nil {
		select {
		case <-cur.done:
			return nil
		case <-time.After(grace):
		}
	}
	if err := cur.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing %s: %w", n.name, err)
	}
	select {
	case <-cur.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit 10s after SIGKILL", n.name, cur.cmd.Process.Pid)
	}
}

// stopAll stops every node at once (see stopNode) and closes the client.
func (c *cluster) stopAll(grace time.Duration) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Go(func() { errs[i] = c.stopNode(i, grace) })
	}
	wg.Wait()
	c.caller.Close()
	return errors.Join(errs...)
}

var errNotRunning = errors.New("not running")

// poll asks every running node for its status and its replica's value;
// nodes without a process get errNotRunning.
func (c *cluster) poll(ctx context.Context) []peerStatus {
	var live []string
	for i, a := range c.addrs {
		if c.running(i) {
			live = append(live, a)
		}
	}
	got := queryStatus(ctx, c.caller, c.client, live, c.group)
	rows := make([]peerStatus, len(c.addrs))
	for i, a := range c.addrs {
		rows[i] = peerStatus{addr: a, err: errNotRunning}
		for _, r := range got {
			if r.addr == a {
				rows[i] = r
			}
		}
	}
	return rows
}

// waitFor polls the nodes until cond holds of their answers, a node
// crashes, ctx ends or timeout passes; it returns the last answers. It
// waits by condition, never by a fixed sleep, so it takes as long as the
// cluster takes and no longer.
func (c *cluster) waitFor(ctx context.Context, timeout time.Duration, what string, cond func([]peerStatus) bool) ([]peerStatus, error) {
	deadline := time.Now().Add(timeout)
	for {
		if err := c.checkExits(); err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		rows := c.poll(pctx)
		cancel()
		if cond(rows) {
			return rows, nil
		}
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
		if time.Now().After(deadline) {
			return rows, fmt.Errorf("no %s within %v; last seen: %s", what, timeout, summarize(rows))
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// leaderOf returns the index of the node that every running node
// acknowledges as leader of one term, or -1: there must be exactly one
// leader, and every other running node must answer and follow it in its
// term.
func leaderOf(rows []peerStatus) int {
	lead := -1
	for i, r := range rows {
		if r.err == nil && r.st.Role == "Leader" {
			if lead >= 0 {
				return -1
			}
			lead = i
		}
	}
	if lead < 0 {
		return -1
	}
	l := rows[lead].st
	for _, r := range rows {
		switch {
		case errors.Is(r.err, errNotRunning):
		case r.err != nil, r.st.Leader != l.NodeID, r.st.Term != l.Term:
			return -1
		}
	}
	return lead
}

// allApplied reports whether there is a leader and every running node has
// committed and applied exactly the leader's commit index: all replicas
// hold the same counter.
func allApplied(rows []peerStatus) bool {
	lead := leaderOf(rows)
	if lead < 0 {
		return false
	}
	commit := rows[lead].st.CommitIndex
	for _, r := range rows {
		if r.err == nil && (r.st.CommitIndex != commit || r.st.AppliedIndex != commit || r.valueErr != nil) {
			return false
		}
	}
	return true
}

// summarize is a one-line view of rows for error messages.
func summarize(rows []peerStatus) string {
	var parts []string
	for i, r := range rows {
		name := fmt.Sprintf("node%d", i+1)
		if r.err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", name, r.err))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s term %d leader %d commit %d applied %d", name,
			roleWord(r.st.Role), r.st.Term, r.st.Leader, r.st.CommitIndex, r.st.AppliedIndex))
	}
	return strings.Join(parts, "; ")
}

// freeLoopbackAddrs returns n distinct loopback addresses whose ports were
// free a moment ago: all n listeners are held at once so that the kernel
// cannot hand out one port twice.
func freeLoopbackAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// busyAddr returns the first of addrs that cannot be listened on now, or "".
func busyAddr(addrs []string) string {
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return a
		}
		ln.Close()
	}
	return ""
}

func loopbackAddrs(ports []int) []string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return out
}
