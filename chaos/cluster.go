package chaos

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/chaos/faultnet"
	"github.com/raftkit/raftkit/examples/counter"
	"github.com/raftkit/raftkit/transport/tcp"
)

// Timing of the servers under test: a 50 ms tick and a 10-tick election
// timeout make elections take 0.5-1 s, so a 30 s run sees many of them.
const (
	tick          = 50 * time.Millisecond
	electionTicks = 10
	electionTime  = tick * electionTicks
)

// localValueService is the counter server's service answering with its
// own replica's value (cmd/counter); the harness compares replicas with it.
const localValueService = "counter.local_value"

// server is one counter server process and where it lives.
type server struct {
	id      uint64
	listen  string // the real raft address
	proxy   string // what peers and clients dial
	dataDir string
	logPath string
	join    bool

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd's Wait returned
	paused bool
	ending bool // the harness is killing or stopping it: its exit is expected
}

// cluster runs counter server processes whose peer links all pass through
// a faultnet.Net.
//
// Concurrency: its methods are called from the scenario's goroutine only,
// except callers, which is safe for concurrent use.
type cluster struct {
	exe      string
	dir      string
	net      *faultnet.Net
	snapshot int64  // --snapshot-entries
	margin   uint64 // --snapshot-margin
	servers  map[uint64]*server
	initial  []string // the initial --peers (proxy addresses)
	caller   *tcp.Client
	mu       sync.Mutex // guards servers' process fields against wait goroutines
	// crashes are exits the harness did not cause (a panic, a fatal
	// error): each fails the run, since a restart would hide it.
	crashes []string
}

func newCluster(exe, dir string, n int, snapshotEntries int64, margin uint64) (*cluster, error) {
	c := &cluster{
		exe: exe, dir: dir, net: faultnet.New(nil), snapshot: snapshotEntries, margin: margin,
		servers: make(map[uint64]*server),
		caller:  tcp.NewClient(tcp.ClientOptions{DialTimeout: time.Second}),
	}
	for id := uint64(1); id <= uint64(n); id++ {
		s, err := c.addServer(id, false)
		if err != nil {
			c.close()
			return nil, err
		}
		c.initial = append(c.initial, s.proxy)
	}
	return c, nil
}

// addServer reserves a real address on the server's own loopback IP and a
// proxy in front of it; it does not start the process.
func (c *cluster) addServer(id uint64, join bool) (*server, error) {
	ip := faultnet.SourceIP(int(id))
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return nil, fmt.Errorf("reserving a port on %s: %w", ip, err)
	}
	listen := ln.Addr().String()
	ln.Close()
	proxy, err := c.net.Add(int(id), listen)
	if err != nil {
		return nil, err
	}
	s := &server{
		id: id, listen: listen, proxy: proxy, join: join,
		dataDir: filepath.Join(c.dir, fmt.Sprintf("n%d", id)),
		logPath: filepath.Join(c.dir, fmt.Sprintf("n%d.log", id)),
	}
	c.servers[id] = s
	return s, nil
}

// start launches s's process; its stderr (the JSON log) is appended to
// its log file, which survives restarts.
func (c *cluster) start(s *server) error {
	args := []string{"server", "--data", s.dataDir, "--addr", s.proxy, "--listen", s.listen,
		"--source-ip", faultnet.SourceIP(int(s.id)).String(), "--peers", strings.Join(c.initial, ","),
		"--tick", tick.String(), "--election-ticks", strconv.Itoa(electionTicks),
		"--snapshot-entries", strconv.FormatInt(c.snapshot, 10),
		"--snapshot-margin", strconv.FormatUint(c.margin, 10), "--log-level", "info"}
	if s.join {
		args = append(args, "--join", "--id", strconv.FormatUint(s.id, 10))
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that a signal to the harness's terminal
	// does not reach it and cleanup owns its fate; killed with the harness
	// should the harness die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting node %d: %w", s.id, err)
	}
	exited := make(chan struct{})
	c.mu.Lock()
	s.cmd, s.exited, s.paused, s.ending = cmd, exited, false, false
	c.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		c.mu.Lock()
		if !s.ending {
			c.crashes = append(c.crashes, fmt.Sprintf("node %d exited on its own (%v); see %s", s.id, err, s.logPath))
		}
		c.mu.Unlock()
		close(exited)
	}()
	// Open the proxy once the server listens, so that peers and clients
	// are refused, not cut off, while it starts.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && c.running(s) {
		if conn, err := net.DialTimeout("tcp", s.listen, time.Second); err == nil {
			conn.Close()
			break
		}
		time.Sleep(5 * time.Millisecond) // another process starting: nothing to block on
	}
	return c.net.Up(int(s.id))
}

// crashed returns the exits the harness did not cause.
func (c *cluster) crashed() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.crashes...)
}

func (c *cluster) running(s *server) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to s's process; a process already gone is not an error.
func (c *cluster) signal(s *server, sig syscall.Signal) {
	c.mu.Lock()
	cmd := s.cmd
	if cmd != nil {
		switch sig {
		case syscall.SIGSTOP:
			s.paused = true
		case syscall.SIGCONT:
			s.paused = false
		}
	}
	c.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// kill SIGKILLs s and waits for it to be gone.
func (c *cluster) kill(s *server) {
	c.mu.Lock()
	cmd, exited := s.cmd, s.exited
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	c.mu.Lock()
	s.ending = true
	c.mu.Unlock()
	_ = cmd.Process.Kill()
	<-exited
	c.net.Down(int(s.id))
	c.mu.Lock()
	s.cmd, s.paused = nil, false
	c.mu.Unlock()
}

// stop asks s to shut down cleanly (SIGTERM, after a SIGCONT should it be
// paused) and kills it if it has not gone within a few seconds.
func (c *cluster) stop(s *server) {
	c.mu.Lock()
	cmd, exited := s.cmd, s.exited
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	c.mu.Lock()
	s.ending = true
	c.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		c.kill(s)
	}
	c.net.Down(int(s.id))
	c.mu.Lock()
	s.cmd = nil
	c.mu.Unlock()
}

// close stops every process, the proxies and the client connections.
func (c *cluster) close() {
	for _, s := range c.servers {
		c.stop(s)
	}
	_ = c.net.Close()
	_ = c.caller.Close()
}

// members are the servers the harness currently counts in the group, by ID.
func (c *cluster) ids() []uint64 {
	ids := make([]uint64, 0, len(c.servers))
	for id := range c.servers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (c *cluster) proxies() []string {
	var out []string
	for _, id := range c.ids() {
		out = append(out, c.servers[id].proxy)
	}
	return out
}

// status asks s for its member's status, bounded by timeout.
func (c *cluster) status(ctx context.Context, s *server) (raftkit.StatusJSON, error) {
	cl := counter.NewClient(c.caller, []string{s.proxy}, counter.DefaultGroup)
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return cl.Status(ctx, s.proxy)
}

// localValue asks s for its own replica's value.
func (c *cluster) localValue(ctx context.Context, s *server) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := c.caller.Call(ctx, s.proxy, localValueService, raftkit.GroupIDFromName(counter.DefaultGroup), nil)
	if err != nil {
		return 0, err
	}
	if len(resp) != 8 {
		return 0, errors.New("chaos: local value: malformed response")
	}
	return int64(binary.BigEndian.Uint64(resp)), nil
}

// runtimeService is the counter server's service answering with its
// goroutine count and heap size (cmd/counter).
const runtimeService = "counter.runtime"

type runtimeStats struct {
	Goroutines int    `json:"goroutines"`
	HeapBytes  uint64 `json:"heap_bytes"`
}

// runtime asks s for its process's goroutine count and heap size.
func (c *cluster) runtime(ctx context.Context, s *server) (runtimeStats, error) {
	var st runtimeStats
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := c.caller.Call(ctx, s.proxy, runtimeService, 0, nil)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(resp, &st)
}

// leader returns the server that says it leads with the highest term, or
// nil.
func (c *cluster) leader(ctx context.Context) *server {
	var best *server
	var term uint64
	for _, id := range c.ids() {
		s := c.servers[id]
		if !c.running(s) || s.paused {
			continue
		}
		st, err := c.status(ctx, s)
		if err == nil && st.Role == "Leader" && st.Term >= term {
			best, term = s, st.Term
		}
	}
	return best
}
