package harness

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/bench/systems"
)

// fakeCluster is an in-process stand-in for a replicated system: one
// leader index shared by every replica and group, a fixed commit delay,
// and an optional error every failEvery proposals.
type fakeCluster struct {
	leader    atomic.Int32
	delay     time.Duration
	failEvery int64
	n         atomic.Int64
	closed    atomic.Int32
}

type fakeNode struct {
	c  *fakeCluster
	id int32
}

var errFake = errors.New("fake: disk on fire")

func (n fakeNode) Propose(ctx context.Context, g int, p []byte) error {
	if n.c.leader.Load() != n.id {
		return systems.ErrNotLeader
	}
	if k := n.c.n.Add(1); n.c.failEvery > 0 && k%n.c.failEvery == 0 {
		return errFake
	}
	select {
	case <-time.After(n.c.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n fakeNode) IsLeader(int) bool { return n.c.leader.Load() == n.id }
func (n fakeNode) Close() error      { n.c.closed.Add(1); return nil }

type fakeSystem struct{ c *fakeCluster }

func (fakeSystem) Name() string { return "fake" }
func (s fakeSystem) StartNode(cfg systems.Config, id int) (systems.Node, error) {
	if cfg.Groups > 4 {
		return nil, systems.ErrUnsupported
	}
	for _, d := range cfg.Dirs {
		if _, err := os.Stat(d); err != nil {
			return nil, err
		}
	}
	return fakeNode{s.c, int32(id)}, nil
}

func fakeNodes(c *fakeCluster) []systems.Node {
	return []systems.Node{fakeNode{c, 0}, fakeNode{c, 1}, fakeNode{c, 2}}
}

func TestRunLoadFollowsLeaderAndCountsErrors(t *testing.T) {
	c := &fakeCluster{delay: 200 * time.Microsecond, failEvery: 50}
	c.leader.Store(1)
	var hooks []string
	go func() {
		// Move leadership during the window: clients must find it again.
		time.Sleep(150 * time.Millisecond)
		c.leader.Store(2)
	}()
	r, err := RunLoad(context.Background(), fakeNodes(c), LoadOptions{
		Groups: 2, Clients: 8, Payload: 16, Warmup: 50 * time.Millisecond, Duration: 250 * time.Millisecond,
		OnWindowStart: func() { hooks = append(hooks, "start") },
		OnWindowEnd:   func() { hooks = append(hooks, "end") },
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops < 100 || int64(len(r.Latencies)) != r.Ops || !slices.IsSorted(r.Latencies) {
		t.Fatalf("ops %d, %d latencies (sorted %v)", r.Ops, len(r.Latencies), slices.IsSorted(r.Latencies))
	}
	if r.Window < 250*time.Millisecond || r.Window > 400*time.Millisecond {
		t.Errorf("window %v, want about 250ms", r.Window)
	}
	if r.Errors[errFake.Error()] == 0 || r.Errors["not_leader"] == 0 {
		t.Errorf("errors %v: want the fake's failures and not_leader after the change", r.Errors)
	}
	if Percentile(r.Latencies, 0.5) < c.delay {
		t.Errorf("p50 %v below the commit delay %v", Percentile(r.Latencies, 0.5), c.delay)
	}
	if !slices.Equal(hooks, []string{"start", "end"}) {
		t.Errorf("hooks ran as %v", hooks)
	}
}

func TestRunLoadStopsOnCancel(t *testing.T) {
	c := &fakeCluster{delay: time.Hour} // proposals only end by context
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := RunLoad(ctx, fakeNodes(c), LoadOptions{Groups: 1, Clients: 4, Payload: 1, Duration: time.Hour})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RunLoad = %v, want the context's error", err)
	}
}

func TestRunCellInProcess(t *testing.T) {
	c := &fakeCluster{delay: 100 * time.Microsecond}
	dir := t.TempDir()
	spec := CellSpec{System: "fake", Payload: 16, Clients: 4, Groups: 2, Warmup: 20 * time.Millisecond,
		Duration: 100 * time.Millisecond, ElectionTimeout: time.Second, Heartbeat: 100 * time.Millisecond, Dir: dir}
	r := RunCell(context.Background(), fakeSystem{c}, spec)
	if !r.OK() || r.MaxRSSBytes <= 0 || r.CPUSec < 0 || r.P50us <= 0 {
		t.Fatalf("result %+v", r)
	}
	if c.closed.Load() != 3 {
		t.Errorf("%d replicas closed, want 3", c.closed.Load())
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("data dirs left behind: %v", left)
	}
	spec.Groups = 16
	if r := RunCell(context.Background(), fakeSystem{c}, spec); !r.Unsupported || r.OK() {
		t.Errorf("16 groups on a 4-group system: %+v", r)
	}
}
