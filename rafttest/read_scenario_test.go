package rafttest

import (
	"errors"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/core"
)

// others returns the node IDs of c other than id.
func others(c *Cluster, id uint64) []uint64 {
	var out []uint64
	for i := uint64(1); i <= uint64(c.Size()); i++ {
		if i != id {
			out = append(out, i)
		}
	}
	return out
}

// waitNewLeaderCommit runs until a node other than old leads in a term above
// oldTerm and has committed an entry of its term; it returns that index.
func waitNewLeaderCommit(t *testing.T, c *Cluster, old, oldTerm uint64) uint64 {
	t.Helper()
	var idx uint64
	done := func() bool {
		for _, id := range others(c, old) {
			if c.Role(id) == core.RoleLeader && c.Term(id) > oldTerm {
				if tm, _, _, ok := c.CommittedEntry(c.Committed()); ok && tm == c.Term(id) {
					idx = c.Committed()
					return true
				}
			}
		}
		return false
	}
	if err := c.RunUntil(done, 20*time.Second); err != nil {
		t.Fatalf("the majority elected no new leader that committed: %v", err)
	}
	return idx
}

// TestScenarioIsolatedLeaderSafeRead: a leader cut off from the group never
// answers a safe read, issued before or after the rest of the group has
// elected a new leader that commits. Check quorum is off, so the old leader
// keeps believing it leads.
func TestScenarioIsolatedLeaderSafeRead(t *testing.T) {
	c := newTestCluster(t, Options{Seed: 11, Nodes: 3, DisableCheckQuorum: true})
	old := waitLeader(t, c, 10*time.Second)
	oldTerm := c.Term(old)
	commit(t, c, "before", 10*time.Second)
	c.Isolate(old)
	early, err := c.ReadIndex(old, false)
	if err != nil {
		t.Fatal(err)
	}
	waitNewLeaderCommit(t, c, old, oldTerm)
	if c.Role(old) != core.RoleLeader {
		t.Fatalf("old leader n%d is %s; the scenario needs it to believe it leads", old, c.Role(old))
	}
	late, err := c.ReadIndex(old, false)
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, c, 5*time.Second)
	c.Heal()
	commit(t, c, "after", 10*time.Second)
	for _, ctx := range []uint64{early, late} {
		if idx, at, ok := c.ReadResult(ctx); ok {
			t.Fatalf("isolated leader answered safe read #%d at %.3fs with index %d", ctx, at.Seconds(), idx)
		}
	}
}

// TestScenarioIsolatedLeaderLeaseRead: a leader cut off from the group
// answers lease reads for at most its lease after the cut, and none once the
// group has a new leader; every answer passes the read checker.
func TestScenarioIsolatedLeaderLeaseRead(t *testing.T) {
	opts := Options{Seed: 12, Nodes: 3}
	c := newTestCluster(t, opts)
	opts.setDefaults()
	leaseTicks := max(opts.ElectionTick*9/10, 1)
	old := waitLeader(t, c, 10*time.Second)
	oldTerm := c.Term(old)
	commit(t, c, "before", 10*time.Second)
	c.Isolate(old)
	cutAt := c.Now()
	leaseEnd := cutAt + time.Duration(leaseTicks)*opts.TickInterval

	type read struct {
		ctx    uint64
		issued time.Duration
	}
	var reads []read
	var newLeaderAt time.Duration
	for c.Now() < cutAt+3*time.Second {
		if c.Role(old) == core.RoleLeader {
			ctx, err := c.ReadIndex(old, true)
			if err != nil {
				t.Fatal(err)
			}
			reads = append(reads, read{ctx, c.Now()})
		}
		if newLeaderAt == 0 && c.Leader() != old && c.Term(c.Leader()) > oldTerm {
			newLeaderAt = c.Now()
		}
		mustRun(t, c, 20*time.Millisecond)
	}
	if newLeaderAt == 0 {
		waitNewLeaderCommit(t, c, old, oldTerm)
		newLeaderAt = c.Now()
	}
	answered := 0
	for _, r := range reads {
		_, at, ok := c.ReadResult(r.ctx)
		if !ok {
			continue
		}
		answered++
		if r.issued >= leaseEnd {
			t.Errorf("lease read #%d issued at %.3fs answered at %.3fs, after the lease ended at %.3fs",
				r.ctx, r.issued.Seconds(), at.Seconds(), leaseEnd.Seconds())
		}
		if at >= newLeaderAt {
			t.Errorf("lease read #%d answered at %.3fs, with a new leader since %.3fs", r.ctx, at.Seconds(), newLeaderAt.Seconds())
		}
	}
	if answered == 0 || answered == len(reads) {
		t.Fatalf("%d of %d lease reads answered: the scenario did not exercise both sides of the lease", answered, len(reads))
	}
	c.Heal()
	commit(t, c, "after", 10*time.Second)
}

// TestScenarioRestartedVoterHonoursLease: the leader's lease rests on the
// follower that acknowledged it; that follower crashes and restarts at once
// and must still not help elect a new leader while the lease may hold, even
// for a candidate that stopped hearing the leader long ago.
func TestScenarioRestartedVoterHonoursLease(t *testing.T) {
	opts := Options{Seed: 13, Nodes: 3}
	c := newTestCluster(t, opts)
	opts.setDefaults()
	leaseTicks := max(opts.ElectionTick*9/10, 1)
	old := waitLeader(t, c, 10*time.Second)
	oldTerm := c.Term(old)
	commit(t, c, "before", 10*time.Second)
	rest := others(c, old)
	acker, candidate := rest[0], rest[1]
	// The candidate stops hearing the leader; the acker keeps hearing it
	// until the leader is cut off entirely.
	c.Partition([]uint64{old, acker}, []uint64{candidate})
	mustRun(t, c, 3*time.Second)
	c.Heal()
	c.Isolate(old)
	cutAt := c.Now()
	c.Crash(acker)
	c.Restart(acker)
	if err := c.Campaign(candidate); err != nil {
		t.Fatal(err)
	}
	leaseEnd := cutAt + time.Duration(leaseTicks)*opts.TickInterval
	for c.Now() < leaseEnd {
		if l := c.Leader(); l != old && l != 0 && c.Term(l) > oldTerm {
			t.Fatalf("n%d leads term %d at %.3fs, within the lease of n%d that ends at %.3fs",
				l, c.Term(l), c.Now().Seconds(), old, leaseEnd.Seconds())
		}
		if c.Role(old) == core.RoleLeader {
			if _, err := c.ReadIndex(old, true); err != nil && !errors.Is(err, core.ErrReadDropped) {
				t.Fatal(err)
			}
		}
		mustRun(t, c, 10*time.Millisecond)
	}
	waitNewLeaderCommit(t, c, old, oldTerm)
	if st := c.Stats(); st.ReadsImmediate == 0 {
		t.Fatalf("no lease read was answered during the lease: %+v", st)
	}
	c.Heal()
	commit(t, c, "after", 10*time.Second)
}

// TestRandomizedReadCoverage checks that the randomized runs exercise reads:
// safe and lease reads answered, lease reads answered at once, reads refused.
func TestRandomizedReadCoverage(t *testing.T) {
	var sum Stats
	for seed := uint64(1); seed <= 10; seed++ {
		res, err := Run(Options{Seed: seed, Duration: 30 * time.Second, VaryCoreConfig: true})
		if err != nil {
			t.Fatal(err)
		}
		sum.Reads += res.Stats.Reads
		sum.ReadsReleased += res.Stats.ReadsReleased
		sum.ReadsImmediate += res.Stats.ReadsImmediate
		sum.ReadsRefused += res.Stats.ReadsRefused
	}
	if sum.ReadsReleased == 0 || sum.ReadsImmediate == 0 || sum.ReadsRefused == 0 ||
		sum.ReadsReleased <= sum.ReadsImmediate {
		t.Fatalf("reads not exercised: %d issued, %d answered, %d at once, %d refused",
			sum.Reads, sum.ReadsReleased, sum.ReadsImmediate, sum.ReadsRefused)
	}
	t.Logf("%d reads issued, %d answered (%d at once), %d refused", sum.Reads, sum.ReadsReleased, sum.ReadsImmediate, sum.ReadsRefused)
}
