package raftkit

import (
	"errors"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
)

// TestPendingSettledByIndexAndTerm replays Raft's figure-8 shape on one
// node's task queue: the node proposed X1..X3 at 2..4 in term 1, lost them
// from its log to a term-2 leader, led again in term 3 and proposed Y at 4.
// The committed log turns out to be term 1's entries (a third node that
// kept them won term 4): X1..X3 succeed, Y fails — none is failed early.
func TestPendingSettledByIndexAndTerm(t *testing.T) {
	fut := func() *Future { return newFuture(nil) }
	x1, x2, x3, y := fut(), fut(), fut(), fut()
	var p []pendingTask
	p = addPending(p, 2, 1, []taskReq{{fut: x1}, {fut: x2}, {fut: x3}})
	p = addPending(p, 4, 3, []taskReq{{fut: y}})
	if len(p) != 4 || p[2].index != 4 || p[3].index != 4 {
		t.Fatalf("pending %+v", p)
	}
	for _, f := range []*Future{x1, x2, x3, y} {
		select {
		case <-f.Done():
			t.Fatal("a task was settled before its index was committed")
		default:
		}
	}
	ents := []raftpb.Entry{{Index: 2, Term: 1}, {Index: 3, Term: 1}, {Index: 4, Term: 1}}
	futs, rest := settlePending(p, ents)
	if len(rest) != 0 || futs[0] != x1 || futs[1] != x2 || futs[2] != x3 {
		t.Fatalf("futs %v rest %v", futs, rest)
	}
	<-y.Done()
	if !errors.Is(y.res.Err, ErrLeaderChanged) {
		t.Fatalf("Y: %v", y.res.Err)
	}
	// Later tasks stay queued for later batches.
	p = addPending(nil, 5, 4, []taskReq{{fut: fut()}})
	if futs, rest := settlePending(p, ents); futs != nil || len(rest) != 1 {
		t.Fatalf("a task beyond the batch was settled: %v %v", futs, rest)
	}
}
