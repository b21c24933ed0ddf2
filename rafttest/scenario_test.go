package rafttest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/core"
)

// newTestCluster builds a cluster and fails the test on error.
func newTestCluster(t *testing.T, opts Options) *Cluster {
	t.Helper()
	c, err := NewCluster(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitLeader runs until some running node leads, and returns it.
func waitLeader(t *testing.T, c *Cluster, limit time.Duration) uint64 {
	t.Helper()
	if err := c.RunUntil(func() bool { return c.Leader() != 0 }, limit); err != nil {
		t.Fatalf("no leader: %v", err)
	}
	return c.Leader()
}

// commit proposes data to whichever node leads, retrying while leadership
// moves or messages are lost, until the entry is applied on every node. It
// returns the entry's index.
func commit(t *testing.T, c *Cluster, data string, limit time.Duration) uint64 {
	t.Helper()
	return commitOn(t, c, data, limit, c.AllApplied)
}

// commitOn is commit with applied saying which nodes must have applied.
func commitOn(t *testing.T, c *Cluster, data string, limit time.Duration, applied func(uint64) bool) uint64 {
	t.Helper()
	deadline := c.Now() + limit
	for c.Now() < deadline {
		l := c.Leader()
		if l == 0 {
			mustRun(t, c, 100*time.Millisecond)
			continue
		}
		idx, term, err := c.Propose(l, []byte(data))
		if err != nil {
			mustRun(t, c, 100*time.Millisecond)
			continue
		}
		done := func() bool {
			tm, _, d, ok := c.CommittedEntry(idx)
			return ok && (tm != term || string(d) != data || applied(idx))
		}
		err = c.RunUntil(done, min(5*time.Second, max(deadline-c.Now(), 1)))
		if err != nil && !errors.Is(err, ErrTimeout) {
			t.Fatal(err)
		}
		if tm, _, d, ok := c.CommittedEntry(idx); ok && tm == term && string(d) == data && applied(idx) {
			return idx
		}
	}
	t.Fatalf("%q not applied on all nodes within %v (seed %d)", data, limit, c.Seed())
	return 0
}

func mustRun(t *testing.T, c *Cluster, d time.Duration) {
	t.Helper()
	if err := c.RunFor(d); err != nil {
		t.Fatal(err)
	}
}

func TestScenarioElectAndCommit(t *testing.T) {
	c := newTestCluster(t, Options{Seed: 1, Nodes: 3})
	l := waitLeader(t, c, 10*time.Second)
	if c.Term(l) == 0 {
		t.Fatalf("leader n%d in term 0", l)
	}
	var last uint64
	for i := range 10 {
		idx := commit(t, c, fmt.Sprintf("v%d", i), 10*time.Second)
		if idx <= last {
			t.Fatalf("entry %d committed at %d, not after %d", i, idx, last)
		}
		last = idx
	}
	if got := c.Leader(); got != l {
		t.Errorf("leadership moved from n%d to n%d on a healthy network", l, got)
	}
	if st := c.Stats(); st.Elections != 1 {
		t.Errorf("%d elections on a healthy network, want 1", st.Elections)
	}
}

func TestScenarioIsolatedLeaderIsReplaced(t *testing.T) {
	c := newTestCluster(t, Options{Seed: 2, Nodes: 3})
	old := waitLeader(t, c, 10*time.Second)
	oldTerm := c.Term(old)
	commit(t, c, "before", 10*time.Second)

	c.Isolate(old)
	newLeader := func() bool {
		for id := uint64(1); id <= 3; id++ {
			if id != old && c.Role(id) == core.RoleLeader && c.Term(id) > oldTerm {
				return true
			}
		}
		return false
	}
	if err := c.RunUntil(newLeader, 10*time.Second); err != nil {
		t.Fatalf("majority elected no new leader: %v", err)
	}
	// Check quorum: the isolated leader steps down on its own.
	if err := c.RunUntil(func() bool { return c.Role(old) != core.RoleLeader }, 5*time.Second); err != nil {
		t.Fatalf("isolated leader n%d never stepped down: %v", old, err)
	}
	// A proposal to the isolated node is refused or never commits.
	if idx, term, err := c.Propose(old, []byte("lost")); err == nil {
		mustRun(t, c, 2*time.Second)
		if tm, _, d, ok := c.CommittedEntry(idx); ok && tm == term && string(d) == "lost" {
			t.Fatal("an isolated node committed a proposal")
		}
	}

	c.Heal()
	idx := commit(t, c, "after", 10*time.Second)
	if c.Applied(old) < idx {
		t.Fatalf("old leader applied %d, want >= %d", c.Applied(old), idx)
	}
	if l := c.Leader(); l == old || c.Term(old) != c.Term(l) {
		t.Errorf("after heal: leader n%d term %d, old leader n%d term %d", l, c.Term(l), old, c.Term(old))
	}
}

func TestScenarioLossyNetworkCommits(t *testing.T) {
	c := newTestCluster(t, Options{Seed: 3, Nodes: 5, DupRate: 0.05})
	c.SetDropRate(0.2)
	waitLeader(t, c, 30*time.Second)
	for i := range 20 {
		commit(t, c, fmt.Sprintf("lossy%d", i), 30*time.Second)
	}
	if st := c.Stats(); st.MessagesDropped == 0 || st.MessagesDuplicated == 0 {
		t.Errorf("no loss or duplication happened: %+v", st)
	}
}

func TestScenarioCrashAndRestart(t *testing.T) {
	c := newTestCluster(t, Options{Seed: 4, Nodes: 3})
	l := waitLeader(t, c, 10*time.Second)
	for i := range 5 {
		commit(t, c, fmt.Sprintf("a%d", i), 10*time.Second)
	}
	c.Crash(l)
	if c.Up(l) {
		t.Fatal("crashed node is up")
	}
	if err := c.RunUntil(func() bool { return c.Leader() != 0 && c.Leader() != l }, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// The remaining majority keeps committing while l is down.
	for i := range 5 {
		idx, term, err := c.Propose(c.Leader(), []byte(fmt.Sprintf("b%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.RunUntil(func() bool { return c.Committed() >= idx }, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if tm, _, _, _ := c.CommittedEntry(idx); tm != term {
			t.Fatalf("entry %d committed in term %d, proposed in %d", idx, tm, term)
		}
	}
	// A restarted node rebuilds its state machine from index 1.
	c.Restart(l)
	idx := commit(t, c, "c", 10*time.Second)
	if c.Applied(l) != idx {
		t.Fatalf("restarted node applied %d, want %d", c.Applied(l), idx)
	}
}

func TestScenarioMinorityPartitionHeals(t *testing.T) {
	c := newTestCluster(t, Options{Seed: 5, Nodes: 5})
	l := waitLeader(t, c, 10*time.Second)
	var minority, majority []uint64
	minority = append(minority, l)
	for id := uint64(1); id <= 5; id++ {
		if id != l {
			if len(minority) < 2 {
				minority = append(minority, id)
			} else {
				majority = append(majority, id)
			}
		}
	}
	c.Partition(minority, majority)
	// The old leader may still accept a proposal; it must never commit.
	idx, term, err := c.Propose(l, []byte("minority"))
	mustRun(t, c, 3*time.Second)
	got := commitOn(t, c, "majority", 20*time.Second, func(idx uint64) bool {
		for _, id := range majority {
			if c.Applied(id) < idx {
				return false
			}
		}
		return true
	})
	c.Heal()
	final := commit(t, c, "healed", 20*time.Second)
	if err == nil {
		if tm, _, d, ok := c.CommittedEntry(idx); ok && tm == term && string(d) == "minority" {
			t.Fatalf("minority proposal committed at %d", idx)
		}
	}
	if got >= final || !c.AllApplied(final) {
		t.Fatalf("majority entry %d, healed entry %d", got, final)
	}
}

func TestScenarioDeterministic(t *testing.T) {
	run := func() Stats {
		c := newTestCluster(t, Options{Seed: 6, Nodes: 5, DropRate: 0.1, DupRate: 0.1})
		for i := range 5 {
			commit(t, c, fmt.Sprint(i), 30*time.Second)
			c.Isolate(c.Leader())
			mustRun(t, c, 2*time.Second)
			c.Heal()
		}
		return c.Stats()
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("same seed, different runs:\n%+v\n%+v", a, b)
	}
}

// TestScenarioEarlyAckIsCaught breaks the Ready protocol on purpose: a
// follower acknowledges entries before they are durable and then crashes.
// The checker must report the committed entry the new leader lacks.
func TestScenarioEarlyAckIsCaught(t *testing.T) {
	c := newTestCluster(t, Options{Seed: 7, Nodes: 3, bug: bugSendBeforePersist})
	l := waitLeader(t, c, 10*time.Second)
	commit(t, c, "base", 10*time.Second)
	var f, b uint64 // f acknowledges early; b never hears of the entry
	for id := uint64(1); id <= 3; id++ {
		if id != l {
			if f == 0 {
				f = id
			} else {
				b = id
			}
		}
	}
	c.Cut(l, b)
	c.SetFsync(f, time.Second, time.Second) // f's ack leaves long before its write
	idx, _, err := c.Propose(l, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RunUntil(func() bool { return c.Committed() >= idx }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c.Crash(f) // loses "x", which it acknowledged
	c.Crash(l)
	c.SetFsync(f, time.Millisecond, time.Millisecond)
	c.Restart(f)
	err = c.RunFor(20 * time.Second)
	var v *Violation
	if !errors.As(err, &v) {
		t.Fatalf("no violation reported; err = %v", err)
	}
	t.Logf("caught: %s: %s", v.Invariant, v.Detail)
}

func TestScenarioLeadershipTransfer(t *testing.T) {
	c := newTestCluster(t, Options{Seed: 8, Nodes: 5})
	l := waitLeader(t, c, 10*time.Second)
	commit(t, c, "before", 10*time.Second)
	to := l%5 + 1
	if err := c.TransferLeadership(l, to); err != nil {
		t.Fatal(err)
	}
	if err := c.RunUntil(func() bool { return c.Leader() == to }, 5*time.Second); err != nil {
		t.Fatalf("leadership not transferred from n%d to n%d: %v", l, to, err)
	}
	commit(t, c, "after", 10*time.Second)
	if err := c.TransferLeadership(l, to); err == nil {
		t.Error("a follower accepted a transfer request")
	}
}
