package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/chaos/checker"
	"github.com/raftkit/raftkit/examples/counter"
	"github.com/raftkit/raftkit/transport"
)

// Workload shape: each client runs one operation at a time, bounded by
// opTimeout (two election timeouts: long enough to ride out most leader
// changes, short enough that a partitioned client records unknowns rather
// than stalling), and pauses about pace between operations so that a 30 s
// run stays within what the linearizability checker handles in seconds.
const (
	opTimeout = 2 * electionTime
	pace      = 10 * time.Millisecond
	readShare = 0.4
	// leaseShare of the reads use the leader's lease instead of a
	// heartbeat round: both kinds must be linearizable, the lease kind
	// even when the leader was paused.
	leaseShare = 0.5
)

// workload runs sequential clients against the cluster and records every
// operation in a checker.
type workload struct {
	rec    *checker.Recorder
	deltas atomic.Int64 // the last delta handed out: every increment adds a new one
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// startWorkload starts perNode clients for each address in addrs; the
// clients of a node try it first and follow leader hints from there.
func startWorkload(c *cluster, addrs []string, perNode int, seed uint64) *workload {
	w := &workload{rec: checker.NewRecorder()}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	client := 0
	for node, addr := range addrs {
		for range perNode {
			peers := append([]string{addr}, without(addrs, addr)...)
			cl := counter.NewClient(c.caller, peers, counter.DefaultGroup)
			rng := rand.New(rand.NewPCG(seed, uint64(client)))
			w.wg.Add(1)
			go w.run(ctx, cl, client, node+1, rng)
			client++
		}
	}
	return w
}

func (w *workload) run(ctx context.Context, cl *counter.Client, client, node int, rng *rand.Rand) {
	defer w.wg.Done()
	for ctx.Err() == nil {
		if rng.Float64() < readShare {
			mode := raftkit.ReadSafe
			if rng.Float64() < leaseShare {
				mode = raftkit.ReadLease
			}
			w.read(ctx, cl, client, node, mode)
		} else {
			w.add(ctx, cl, client, node)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(rng.Int64N(int64(2 * pace)))):
		}
	}
}

// add increments by a delta no other operation uses, so the final value
// tells whether an increment was lost or applied twice.
func (w *workload) add(ctx context.Context, cl *counter.Client, client, node int) {
	delta := w.deltas.Add(1)
	op := w.rec.Begin(client, node, checker.Add, delta)
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	v, err := cl.IncrementAndGet(octx, delta)
	cancel()
	switch {
	case err == nil:
		op.End(checker.OK, v, nil)
	case definitelyNotApplied(err):
		op.End(checker.Failed, 0, err)
	default:
		op.End(checker.Unknown, 0, err)
	}
}

// read is a linearizable get; a failed read has no effect, so any error
// makes it Failed.
func (w *workload) read(ctx context.Context, cl *counter.Client, client, node int, mode raftkit.ReadMode) {
	op := w.rec.Begin(client, node, checker.Read, 0)
	if mode == raftkit.ReadLease {
		op.MarkLease()
	}
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	v, err := cl.GetWith(octx, mode)
	cancel()
	if err != nil {
		op.End(checker.Failed, 0, err)
		return
	}
	op.End(checker.OK, v, nil)
}

// stop ends the clients; operations in flight end as their errors say.
func (w *workload) stop() []checker.Op {
	w.cancel()
	w.wg.Wait()
	return w.rec.Ops()
}

// definitelyNotApplied reports errors after which the increment cannot
// take effect: it never reached a leader's log, or the entry it made was
// replaced. Anything else (timeouts, broken connections, shutdown) leaves
// the outcome unknown.
func definitelyNotApplied(err error) bool {
	if errors.Is(err, transport.ErrUnreachable) {
		return true
	}
	var re *transport.RemoteError
	if !errors.As(err, &re) {
		return false
	}
	switch raftkit.Code(re.Code) {
	case raftkit.CodeNotLeader, raftkit.CodeBusy, raftkit.CodeTryAgain, raftkit.CodeUnknownGroup,
		raftkit.CodeLeaderChanged, raftkit.CodeStaleTerm, raftkit.CodeInvalidArgument:
		return true
	}
	return false
}

func without(list []string, x string) []string {
	var out []string
	for _, v := range list {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}
