package counter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/storage/vfs"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/memnet"
)

// cluster is three counter servers on an in-process network, each with a
// MemFS that survives restarts.
type cluster struct {
	t       *testing.T
	net     *memnet.Network
	peers   []string
	fs      []*vfs.MemFS
	servers []*Server
	// snapEvery is the servers' SnapshotEntries; set before start.
	snapEvery int64
}

func newCluster(t *testing.T) *cluster { return newSnapshottingCluster(t, 0) }

// newSnapshottingCluster is newCluster with SnapshotEntries snapEvery.
func newSnapshottingCluster(t *testing.T, snapEvery int64) *cluster {
	c := &cluster{t: t, net: memnet.New(1), peers: []string{"s1:8081", "s2:8082", "s3:8083"}, snapEvery: snapEvery}
	c.servers = make([]*Server, 3)
	for range c.peers {
		c.fs = append(c.fs, vfs.NewMemFS())
	}
	t.Cleanup(func() {
		for i := range c.servers {
			c.stop(i)
		}
		c.net.Close()
	})
	for i := range c.peers {
		c.start(i)
	}
	return c
}

func (c *cluster) start(i int) {
	c.t.Helper()
	s, err := StartServer(ServerConfig{
		DataDir: "/data", Addr: c.peers[i], Peers: c.peers, FS: c.fs[i], TickInterval: 2 * time.Millisecond,
		NewTransport:   func(h transport.Handler) (transport.Transport, error) { return c.net.Listen(c.peers[i], h) },
		SnapshotCaller: c.net, SnapshotEntries: c.snapEvery,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.servers[i] = s
}

func (c *cluster) stop(i int) {
	if s := c.servers[i]; s != nil {
		c.servers[i] = nil
		if err := s.Close(); err != nil {
			c.t.Errorf("closing server %d: %v", i, err)
		}
	}
}

func (c *cluster) leader() int {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, s := range c.servers {
			if s != nil && s.Node().IsLeader() {
				return i
			}
		}
		time.Sleep(time.Millisecond) // polling a condition driven by real tick timers
	}
	c.t.Fatal("no leader within 20s")
	return -1
}

// TestIncrementAndGet: increments and reads through the route table from
// any starting host, with results as the seeds' Counter gives them.
func TestIncrementAndGet(t *testing.T) {
	c := newCluster(t)
	cl := NewClient(c.net, c.peers, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, want := range []int64{0, 1, 3} {
		got, err := cl.IncrementAndGet(ctx, int64(i))
		if err != nil || got != want {
			t.Fatalf("IncrementAndGet(%d) = %d, %v; want %d", i, got, err, want)
		}
	}
	if v, err := cl.Get(ctx); err != nil || v != 3 {
		t.Fatalf("Get = %d, %v", v, err)
	}
	if cl.Leader() != c.peers[c.leader()] {
		t.Fatalf("route table caches %q, leader is %q", cl.Leader(), c.peers[c.leader()])
	}
	st, err := cl.Status(ctx, c.peers[0])
	if err != nil || st.CommitIndex < 4 || st.Role == "" {
		t.Fatalf("status %+v %v", st, err)
	}
}

// TestFailoverKeepsAcknowledged: concurrent clients increment while the
// leader's server stops; every acknowledged increment is in the final
// value, and the restarted server's replica catches up to it.
func TestFailoverKeepsAcknowledged(t *testing.T) {
	c := newCluster(t)
	cl := NewClient(c.net, c.peers, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var acked, unknown atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				delta := int64(w*1000 + k%7 + 1)
				if _, err := cl.IncrementAndGet(ctx, delta); err != nil {
					unknown.Add(delta)
				} else {
					acked.Add(delta)
				}
			}
		}()
	}
	stopWorkers := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWorkers()
	waitAcked := func(min int64) {
		for acked.Load() < min {
			if ctx.Err() != nil {
				t.Fatalf("acknowledged %d, waiting for %d: %v", acked.Load(), min, ctx.Err())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitAcked(20_000)
	old := c.leader()
	c.stop(old)
	before := acked.Load()
	waitAcked(before + 20_000)
	stopWorkers()
	v, err := cl.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v < acked.Load() || v > acked.Load()+unknown.Load() {
		t.Fatalf("value %d outside [acked %d, acked+unknown %d]", v, acked.Load(), acked.Load()+unknown.Load())
	}
	c.start(old)
	sm := c.servers[old].StateMachine()
	for sm.Value() != v {
		time.Sleep(time.Millisecond)
		if ctx.Err() != nil {
			t.Fatalf("restarted replica at %d, want %d", sm.Value(), v)
		}
	}
}

// TestBadRequests: a malformed request is refused with invalid argument
// and a request for another group with unknown group; neither disturbs the
// server.
func TestBadRequests(t *testing.T) {
	c := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := c.peers[c.leader()]
	_, err := c.net.Call(ctx, l, ServiceIncrement, raftkit.GroupIDFromName(DefaultGroup), []byte("short"))
	var re *transport.RemoteError
	if !errors.As(err, &re) || raftkit.Code(re.Code) != raftkit.CodeInvalidArgument {
		t.Fatalf("malformed increment: %v", err)
	}
	_, err = c.net.Call(ctx, l, ServiceGet, 12345, nil)
	if !errors.As(err, &re) || raftkit.Code(re.Code) != raftkit.CodeUnknownGroup {
		t.Fatalf("unknown group: %v", err)
	}
	if v, err := NewClient(c.net, c.peers, "").IncrementAndGet(ctx, 5); err != nil || v != 5 {
		t.Fatalf("after bad requests: %d %v", v, err)
	}
}

// TestCommandCodec: commands round-trip and malformed ones are rejected by
// every replica alike.
func TestCommandCodec(t *testing.T) {
	for _, d := range []int64{0, 1, -1, 1 << 62, -1 << 63} {
		o, got, err := decodeCommand(encodeCommand(opIncrement, d))
		if err != nil || o != opIncrement || got != d {
			t.Fatalf("round trip %d: %v %d %v", d, o, got, err)
		}
	}
	for _, b := range [][]byte{nil, make([]byte, 15), make([]byte, 17), append([]byte{9}, make([]byte, 15)...)} {
		if _, _, err := decodeCommand(b); err == nil {
			t.Fatalf("decodeCommand(%v) accepted", b)
		}
	}
	if _, err := ParsePeers("a:1,,b:2"); err == nil {
		t.Fatal("empty peer accepted")
	}
	if _, err := ParsePeers("a:1,a:1"); err == nil {
		t.Fatal("duplicate peer accepted")
	}
	if _, err := ParsePeers("nohost"); err == nil {
		t.Fatal("address without port accepted")
	}
	if p, err := ParsePeers(" a:1, b:2 "); err != nil || fmt.Sprint(p) != "[a:1 b:2]" {
		t.Fatalf("ParsePeers = %v %v", p, err)
	}
}
