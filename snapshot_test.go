package raftkit

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/transport"
)

// snapRecorder is a recorder that snapshots: its state is the list of
// payloads (and their indexes) applied so far.
type snapRecorder struct {
	*recorder
}

func (r *snapRecorder) SaveSnapshot() (SnapshotSaveFunc, error) {
	r.mu.Lock()
	data, idx := slices.Clone(r.applied), slices.Clone(r.indexes)
	r.mu.Unlock()
	return func(w *SnapshotWriter) error {
		f, err := w.Create("payloads")
		if err != nil {
			return err
		}
		bw := bufio.NewWriter(f)
		for _, d := range data {
			bw.Write(binary.AppendUvarint(nil, uint64(len(d))))
			bw.Write(d)
		}
		err = errors.Join(bw.Flush(), f.Close())
		if err != nil {
			return err
		}
		g, err := w.Create("meta/indexes")
		if err != nil {
			return err
		}
		for _, i := range idx {
			g.Write(binary.BigEndian.AppendUint64(nil, i))
		}
		return g.Close()
	}, nil
}

func (r *snapRecorder) LoadSnapshot(sr *SnapshotReader) error {
	f, err := sr.Open("payloads")
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var data [][]byte
	for {
		n, err := binary.ReadUvarint(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		d := make([]byte, n)
		if _, err := io.ReadFull(br, d); err != nil {
			return err
		}
		data = append(data, d)
	}
	g, err := sr.Open("meta/indexes")
	if err != nil {
		return err
	}
	defer g.Close()
	raw, err := io.ReadAll(g)
	if err != nil {
		return err
	}
	var idx []uint64
	for len(raw) >= 8 {
		idx = append(idx, binary.BigEndian.Uint64(raw))
		raw = raw[8:]
	}
	r.mu.Lock()
	r.applied, r.indexes = data, idx
	r.events = append(r.events, fmt.Sprintf("load %d", sr.Info().Index))
	r.mu.Unlock()
	return nil
}

// payloads returns the state of host i's member of group 0 as strings.
func (c *testCluster) payloads(i int) []string {
	data, _ := c.sms[[2]int{i, 0}].snapshot()
	out := make([]string, len(data))
	for k, d := range data {
		out[k] = string(d)
	}
	return out
}

func asStrings(b [][]byte) []string {
	out := make([]string, len(b))
	for i, d := range b {
		out[i] = string(d)
	}
	return out
}

// waitSame waits until host i's state equals want.
func (c *testCluster) waitSame(i int, want []string) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("host %d to hold the %d payloads", i, len(want)), func() bool {
		return slices.Equal(c.payloads(i), want)
	})
}

func TestSnapshotManualCompactsAndRestarts(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.snapshots = true
	c.tune = func(o *NodeOptions) { o.SnapshotEntries, o.SnapshotBytes, o.SnapshotMarginEntries = -1, -1, 10 }
	c.startAll()
	want := asStrings(c.applyN(0, 100, "a"))
	lead := c.leader(0)
	info, err := c.node(lead, 0).Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Index < 100 {
		t.Fatalf("snapshot at %d, want at least 100", info.Index)
	}
	// Compaction is queued to the log engine after the snapshot is durable.
	waitFor(t, "compaction to the margin", func() bool {
		st := c.node(lead, 0).Status()
		return st.SnapshotIndex == info.Index && st.FirstIndex == info.Index+1-10
	})
	// A second call with nothing applied since returns the same snapshot.
	again, err := c.node(lead, 0).Snapshot(context.Background())
	if err != nil || again != info {
		t.Fatalf("second snapshot %+v, %v; want %+v", again, err, info)
	}
	want = append(want, asStrings(c.applyN(0, 20, "b"))...)
	c.stop(lead)
	c.start(lead)
	c.waitSame(lead, want)
	if !c.sms[[2]int{lead, 0}].hasEvent(fmt.Sprintf("load %d", info.Index)) {
		t.Fatalf("the restarted node did not load snapshot %d", info.Index)
	}
	// The state machine was rebuilt from the snapshot, then entries after it.
	rec := c.sms[[2]int{lead, 0}]
	rec.mu.Lock()
	idx := slices.Clone(rec.indexes)
	rec.mu.Unlock()
	if !slices.IsSorted(idx) || len(idx) != len(want) {
		t.Fatalf("indexes after restart: %v", idx)
	}
}

func TestSnapshotInstallOnLaggingFollower(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.snapshots = true
	c.tune = func(o *NodeOptions) { o.SnapshotEntries, o.SnapshotMarginEntries = 50, 5 }
	c.startAll()
	want := asStrings(c.applyN(0, 10, "a"))
	lag := (c.leader(0) + 1) % 3
	c.stop(lag)
	want = append(want, asStrings(c.applyN(0, 300, "b"))...)
	lead := c.leader(0)
	waitFor(t, "the leader to compact", func() bool { return c.node(lead, 0).Status().FirstIndex > 20 })
	c.start(lag)
	c.waitSame(lag, want)
	_, events := c.sms[[2]int{lag, 0}].snapshot()
	if !slices.ContainsFunc(events, func(e string) bool { return strings.HasPrefix(e, "load ") }) {
		t.Fatal("the lagging follower caught up without installing a snapshot")
	}
	// It keeps replicating after the install.
	want = append(want, asStrings(c.applyN(0, 10, "c"))...)
	c.waitSame(lag, want)
}

// flakyCaller fails every nth snapshot call, as a broken connection would.
type flakyCaller struct {
	SnapshotCaller
	n     int64
	calls atomic.Int64
	fails atomic.Int64
}

func (f *flakyCaller) Call(ctx context.Context, addr, service string, group uint64, req []byte) ([]byte, error) {
	if f.calls.Add(1)%f.n == 0 {
		f.fails.Add(1)
		return nil, fmt.Errorf("%w: injected", transport.ErrConnectionLost)
	}
	return f.SnapshotCaller.Call(ctx, addr, service, group, req)
}

func TestSnapshotInstallSurvivesDroppedConnections(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	fc := &flakyCaller{SnapshotCaller: c.net, n: 3}
	c.caller = fc
	lag, want := laggingBehindCompaction(t, c)
	c.start(lag)
	c.waitSame(lag, want)
	if fc.fails.Load() == 0 {
		t.Fatal("no call failed; the test proves nothing")
	}
}

func TestSnapshotRequiresSnapshotter(t *testing.T) {
	c := newTestCluster(t, 1, 1)
	c.startAll()
	_, err := c.node(0, 0).Snapshot(context.Background())
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Snapshot without a Snapshotter: %v", err)
	}
}

func TestSnapshotFileNames(t *testing.T) {
	for _, name := range []string{"", "/abs", "../up", "a/../../b", "a//b", "__meta", "__peers", "__mine", "./a"} {
		if checkSnapshotFileName(name) == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	for _, name := range []string{"a", "dir/file", "x.y"} {
		if err := checkSnapshotFileName(name); err != nil {
			t.Errorf("name %q refused: %v", name, err)
		}
	}
}

// TestSnapshotByInterval checks the timer trigger with simulated ticks of
// 2 ms: an interval of 20 ticks snapshots without any entry trigger.
func TestSnapshotByInterval(t *testing.T) {
	c := newTestCluster(t, 1, 1)
	c.snapshots = true
	c.tune = func(o *NodeOptions) {
		o.SnapshotEntries, o.SnapshotBytes, o.SnapshotInterval = -1, -1, 40*time.Millisecond
	}
	c.startAll()
	c.applyN(0, 5, "a")
	waitFor(t, "a timed snapshot", func() bool { return c.node(0, 0).Status().SnapshotIndex >= 5 })
}

// gateCaller holds every snapshot call until open is closed, counting the
// calls whose context ended while held.
type gateCaller struct {
	SnapshotCaller
	open     chan struct{}
	held     atomic.Int64
	canceled atomic.Int64
}

func (g *gateCaller) Call(ctx context.Context, addr, service string, group uint64, req []byte) ([]byte, error) {
	g.held.Add(1)
	select {
	case <-g.open:
	case <-ctx.Done():
		g.canceled.Add(1)
		return nil, ctx.Err()
	}
	return g.SnapshotCaller.Call(ctx, addr, service, group, req)
}

// laggingBehindCompaction stops a follower, applies 200 entries while the
// others snapshot every 50 and compact, and returns the follower's index
// and the payloads it must end with.
func laggingBehindCompaction(t *testing.T, c *testCluster) (int, []string) {
	c.snapshots = true
	c.tune = func(o *NodeOptions) { o.SnapshotEntries, o.SnapshotMarginEntries = 50, 5 }
	c.startAll()
	lag := (c.leader(0) + 1) % 3
	c.stop(lag)
	want := asStrings(c.applyN(0, 200, "a"))
	lead := c.leader(0)
	waitFor(t, "the leader to compact", func() bool { return c.node(lead, 0).Status().FirstIndex > 20 })
	return lag, want
}

// fetchHeldAtGate restarts a follower behind the leader's compaction with
// every snapshot call held at a closed gate, and returns once the
// follower is fetching.
func fetchHeldAtGate(t *testing.T) (c *testCluster, gc *gateCaller, lag int, want []string) {
	c = newTestCluster(t, 3, 1)
	gc = &gateCaller{SnapshotCaller: c.net, open: make(chan struct{})}
	c.caller = gc
	lag, want = laggingBehindCompaction(t, c)
	c.start(lag)
	waitFor(t, "the follower to start fetching", func() bool { return c.node(lag, 0).Status().InstallingSnapshot > 0 })
	return c, gc, lag, want
}

// TestSnapshotNewTermAbortsInstall: a follower's fetch is cancelled when a
// new term begins, and it installs from the new leader.
func TestSnapshotNewTermAbortsInstall(t *testing.T) {
	c, gc, lag, want := fetchHeldAtGate(t)
	c.stop(c.leader(0))
	waitFor(t, "the new term to cancel the fetch", func() bool { return gc.canceled.Load() > 0 })
	close(gc.open)
	c.waitSame(lag, want)
}

// TestSnapshotFollowerRestartsMidInstall: a follower stopped in the middle
// of a fetch leaves no partial snapshot behind and installs after restart.
func TestSnapshotFollowerRestartsMidInstall(t *testing.T) {
	c, gc, lag, want := fetchHeldAtGate(t)
	c.stop(lag)
	close(gc.open)
	c.start(lag)
	c.waitSame(lag, want)
	dir := fmt.Sprintf("/data/groups/%d/snapshots", c.groups[0])
	names, err := c.fs[lag].ReadDir(dir)
	if err != nil || slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "tmp-") }) {
		t.Fatalf("snapshot directory after the install: %v, %v", names, err)
	}
}

// TestSnapshotMissingRefusesStart: a node whose log was compacted behind a
// snapshot that is gone (deleted or corrupt) refuses to start rather than
// apply the log to a state that lacks the compacted entries.
func TestSnapshotMissingRefusesStart(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.snapshots = true
	c.tune = func(o *NodeOptions) { o.SnapshotEntries, o.SnapshotBytes, o.SnapshotMarginEntries = -1, -1, 5 }
	c.startAll()
	c.applyN(0, 50, "a")
	lead := c.leader(0)
	if _, err := c.node(lead, 0).Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "compaction", func() bool { return c.node(lead, 0).Status().FirstIndex > 1 })
	c.stop(lead)
	if err := c.fs[lead].RemoveAll(fmt.Sprintf("/data/groups/%d/snapshots", c.groups[0])); err != nil {
		t.Fatal(err)
	}
	err := c.tryStart(lead)
	if !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), "latest valid snapshot") {
		t.Fatalf("start with the snapshot gone: %v", err)
	}
}
