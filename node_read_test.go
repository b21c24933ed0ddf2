package raftkit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestReadIndexSeesAcknowledgedWrites: after a read barrier returns, on
// the leader, a follower or a learner and in either mode, the member's
// state machine holds every write acknowledged before the read began.
func TestReadIndexSeesAcknowledgedWrites(t *testing.T) {
	c := newTestCluster(t, 4, 1)
	c.voters = 3
	c.startAll()
	ctx := ctxFor(t)
	if err := c.node(c.leader(0), 0).AddLearners(ctx, []Peer{c.peer(3)}); err != nil {
		t.Fatal(err)
	}
	total := 0
	for round := range 3 {
		total += len(c.applyN(0, 10, "w"))
		for i := range 4 {
			for _, mode := range []ReadMode{ReadSafe, ReadLease} {
				idx, err := c.node(i, 0).ReadIndex(ctx, mode)
				if err != nil {
					t.Fatalf("round %d host %d mode %d: %v", round, i, mode, err)
				}
				if got := c.sms[[2]int{i, 0}].count(); got < total {
					t.Fatalf("round %d host %d mode %d: read index %d but %d of %d writes applied",
						round, i, mode, idx, got, total)
				}
			}
		}
	}
	if idx, err := c.node(0, 0).ReadIndex(ctx, ReadStale); err != nil || idx == 0 {
		t.Fatalf("stale read: %d, %v", idx, err)
	}
}

// TestReadIndexConcurrent: many concurrent reads on the leader and a
// follower all complete.
func TestReadIndexConcurrent(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	c.applyN(0, 5, "w")
	ctx := ctxFor(t)
	lead := c.leader(0)
	var wg sync.WaitGroup
	errs := make(chan error, 128)
	for k := range 128 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := c.node((lead+k%2)%3, 0)
			if _, err := n.ReadIndex(ctx, ReadSafe); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestReadIndexWithoutQuorum: a member cut off from the others never
// completes a linearizable read.
func TestReadIndexWithoutQuorum(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	c.applyN(0, 5, "w")
	lead := c.leader(0)
	for i := range 3 {
		if i != lead {
			c.stop(i)
		}
	}
	for _, mode := range []ReadMode{ReadSafe, ReadLease} {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := c.node(lead, 0).ReadIndex(ctx, mode)
		cancel()
		if err == nil {
			t.Fatalf("mode %d: a read without a quorum succeeded", mode)
		}
		if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrLeaderChanged) {
			t.Fatalf("mode %d: %v", mode, err)
		}
	}
}

// TestFollowerReadSurvivesALostForward: a follower's read whose forward to
// the leader is lost (the link between them is cut when it leaves) is
// forwarded again after an election timeout and completes once the link
// is back, well before the caller's deadline.
func TestFollowerReadSurvivesALostForward(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	c.applyN(0, 5, "a")
	l := c.leader(0)
	f := (l + 1) % 3
	fn := c.node(f, 0)
	c.net.Partition(c.addrs[f], c.addrs[l])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := fn.ReadIndex(ctx, ReadSafe)
		done <- err
	}()
	waitFor(t, "the read to be pending", func() bool {
		fn.reads.mu.Lock()
		defer fn.reads.mu.Unlock()
		return len(fn.reads.pending) > 0
	})
	// Two calls through the worker: the Ready that carried the forward
	// (into the cut link) has been handled by the time they return.
	for range 2 {
		if err := fn.onWorker(ctx, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	c.net.Heal()
	if err := <-done; err != nil {
		t.Fatalf("follower read after its forward was lost: %v", err)
	}
}
