package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/cli"
	"github.com/raftkit/raftkit/examples/counter"
)

// A fault is one nemesis action: apply starts it and returns what ends it
// (heal), or an error when it could not start (the run goes on; the
// reason is logged). heal undoes only what apply did.
type fault struct {
	name  string
	apply func(ctx context.Context, r *runner) (heal func(), err error)
	// hold is how long the fault lasts before heal; 0: the default window.
	hold func(rng *rand.Rand) time.Duration
}

// faults by name; scenarios pick among them.
var faults = map[string]fault{
	"partition-halves":   {name: "partition-halves", apply: partitionHalves},
	"isolate-leader":     {name: "isolate-leader", apply: isolateLeader},
	"majority-ring":      {name: "majority-ring", apply: majorityRing},
	"bridge":             {name: "bridge", apply: bridge},
	"one-way":            {name: "one-way", apply: oneWayLeader},
	"kill-minority":      {name: "kill-minority", apply: killMinority},
	"kill-all":           {name: "kill-all", apply: killAll, hold: between(200*time.Millisecond, time.Second)},
	"pause-leader":       {name: "pause-leader", apply: pauseLeader, hold: between(2*electionTime, 5*electionTime)},
	"membership":         {name: "membership", apply: replaceMember},
	"transfer":           {name: "transfer", apply: transferLeader, hold: between(100*time.Millisecond, 500*time.Millisecond)},
	"snapshot-install":   {name: "snapshot-install", apply: cutOffUntilCompacted, hold: between(0, 100*time.Millisecond)},
	"crash-in-install":   {name: "crash-in-install", apply: crashDuringInstall, hold: between(0, 100*time.Millisecond)},
	"partition-and-kill": {name: "partition-and-kill", apply: partitionAndKill},
}

func between(lo, hi time.Duration) func(*rand.Rand) time.Duration {
	return func(rng *rand.Rand) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
}

func (r *runner) shuffled() []int {
	var ids []int
	for _, id := range r.c.ids() {
		ids = append(ids, int(id))
	}
	r.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return ids
}

func (r *runner) heal() func() { return r.c.net.Heal }

func partitionHalves(_ context.Context, r *runner) (func(), error) {
	ids := r.shuffled()
	k := 1 + r.rng.IntN(len(ids)/2)
	r.c.net.Partition(ids[:k], ids[k:])
	r.logf("partition %v | %v", ids[:k], ids[k:])
	return r.heal(), nil
}

func isolateLeader(ctx context.Context, r *runner) (func(), error) {
	l := r.c.leader(ctx)
	if l == nil {
		return nil, fmt.Errorf("no leader to isolate")
	}
	others := slices.DeleteFunc(r.shuffled(), func(id int) bool { return id == int(l.id) })
	r.c.net.Partition([]int{int(l.id)}, others)
	r.logf("isolate leader %d", l.id)
	return r.heal(), nil
}

// majorityRing lets each node talk only to its two ring neighbours: every
// node sees a majority of a 5-node group (itself and two others), but no
// two nodes see the same majority. With 3 nodes it is no fault at all, so
// it cuts one link instead.
func majorityRing(_ context.Context, r *runner) (func(), error) {
	ids := r.shuffled()
	n := len(ids)
	for i := range n {
		for j := i + 1; j < n; j++ {
			if d := j - i; d != 1 && d != n-1 || n == 3 && i == 0 && j == 2 {
				r.c.net.Block(ids[i], ids[j])
				r.c.net.Block(ids[j], ids[i])
			}
		}
	}
	r.logf("majority ring %v", ids)
	return r.heal(), nil
}

// bridge splits the group in two halves that both reach one bridge node.
func bridge(_ context.Context, r *runner) (func(), error) {
	ids := r.shuffled()
	mid := len(ids) / 2
	left, right := ids[:mid], ids[mid+1:]
	for _, a := range left {
		for _, b := range right {
			r.c.net.Block(a, b)
			r.c.net.Block(b, a)
		}
	}
	r.logf("bridge %d between %v and %v", ids[mid], left, right)
	return r.heal(), nil
}

// oneWayLeader drops everything the leader sends while it still hears
// the others.
func oneWayLeader(ctx context.Context, r *runner) (func(), error) {
	l := r.c.leader(ctx)
	if l == nil {
		return nil, fmt.Errorf("no leader to cut one way")
	}
	for _, id := range r.c.ids() {
		if id != l.id {
			r.c.net.Block(int(l.id), int(id))
		}
	}
	r.logf("one-way: leader %d cannot send", l.id)
	return r.heal(), nil
}

// restartAll restarts every server the harness counts that is not running.
func (r *runner) restartAll() {
	for _, id := range r.c.ids() {
		if s := r.c.servers[id]; !r.c.running(s) {
			if err := r.c.start(s); err != nil {
				r.logf("restart %d: %v", id, err)
			}
		}
	}
}

func (r *runner) kill(ids []int) {
	for _, id := range ids {
		s := r.c.servers[uint64(id)]
		r.rss.note(s)
		r.c.kill(s)
	}
}

func killMinority(_ context.Context, r *runner) (func(), error) {
	ids := r.shuffled()
	k := 1 + r.rng.IntN((len(ids)-1)/2)
	r.kill(ids[:k])
	r.logf("SIGKILL %v", ids[:k])
	return r.restartAll, nil
}

func killAll(_ context.Context, r *runner) (func(), error) {
	r.kill(r.shuffled())
	r.logf("SIGKILL all")
	return r.restartAll, nil
}

func pauseLeader(ctx context.Context, r *runner) (func(), error) {
	l := r.c.leader(ctx)
	if l == nil {
		return nil, fmt.Errorf("no leader to pause")
	}
	r.c.signal(l, syscall.SIGSTOP)
	r.logf("SIGSTOP leader %d", l.id)
	return func() { r.c.signal(l, syscall.SIGCONT) }, nil
}

func partitionAndKill(ctx context.Context, r *runner) (func(), error) {
	healNet, _ := partitionHalves(ctx, r)
	restart, _ := killMinority(ctx, r)
	return func() { healNet(); restart() }, nil
}

func (r *runner) admin() *cli.Service {
	return cli.New(r.c.caller, r.c.proxies(), raftkit.GroupIDFromName(counter.DefaultGroup))
}

// replaceMember removes a random member and adds a new one in its place
// while another member is cut off from the rest for 0.5-3 s (the cut heals
// by itself, mid-change, or when the fault ends). A removal or addition
// that fails is reported; the membership the group ends with is what the
// harness counts from then on.
func replaceMember(ctx context.Context, r *runner) (func(), error) {
	ids := r.shuffled()
	victim, cut := uint64(ids[0]), ids[1]
	r.c.net.Partition([]int{cut}, append([]int{ids[0]}, ids[2:]...))
	t := time.AfterFunc(between(500*time.Millisecond, 3*time.Second)(r.rng), r.c.net.Heal)
	heal := func() { t.Stop(); r.c.net.Heal() }
	r.logf("membership: node %d cut off; replacing node %d", cut, victim)

	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.admin().RemovePeer(cctx, victim); err != nil {
		return heal, fmt.Errorf("remove %d: %w", victim, err)
	}
	s := r.c.servers[victim]
	r.rss.note(s)
	r.c.stop(s)
	delete(r.c.servers, victim)
	r.logf("removed %d (its data directory and log stay for a post-mortem)", victim)

	id := r.nextID()
	ns, err := r.c.addServer(id, true)
	if err != nil {
		return heal, err
	}
	if err := r.c.start(ns); err != nil {
		return heal, err
	}
	if err := r.admin().AddPeer(cctx, raftkit.Peer{ID: id, Addr: ns.proxy}); err != nil {
		// The addition may still complete; the harness keeps the server
		// running, and convergence drops it if the group did not take it.
		r.logf("add %d: %v", id, err)
		return heal, nil
	}
	r.logf("added %d", id)
	return heal, nil
}

func (r *runner) nextID() uint64 {
	ids := r.c.ids()
	next := ids[len(ids)-1] + 1
	if next <= r.maxID {
		next = r.maxID + 1
	}
	r.maxID = next
	return next
}

func transferLeader(ctx context.Context, r *runner) (func(), error) {
	l := r.c.leader(ctx)
	if l == nil {
		return nil, fmt.Errorf("no leader to transfer from")
	}
	to := l.id
	for to == l.id {
		ids := r.c.ids()
		to = ids[r.rng.IntN(len(ids))]
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := r.admin().TransferLeader(cctx, to); err != nil {
		return nil, fmt.Errorf("transfer %d -> %d: %w", l.id, to, err)
	}
	r.logf("transferred %d -> %d", l.id, to)
	return func() {}, nil
}

// cutOffUntilCompacted isolates a follower until the leader has compacted
// its log past the follower's last entry, so that healing makes the
// leader send a snapshot.
func cutOffUntilCompacted(ctx context.Context, r *runner) (func(), error) {
	s, err := r.isolateFollowerPastCompaction(ctx)
	if err != nil {
		return r.heal(), err
	}
	r.logf("follower %d cut off until the leader compacted past it", s.id)
	return r.heal(), nil
}

// crashDuringInstall cuts a follower off until it needs a snapshot, heals,
// and SIGKILLs it as soon as its log says it started fetching the
// leader's snapshot (before it logs the fetch done), then restarts it.
func crashDuringInstall(ctx context.Context, r *runner) (func(), error) {
	s, err := r.isolateFollowerPastCompaction(ctx)
	var from int64 // the log's end before healing: the fetch starts after it
	if s != nil {
		from = logSize(s.logPath)
	}
	r.c.net.Heal()
	if err != nil {
		return func() {}, err
	}
	deadline := time.Now().Add(5 * time.Second)
	seen := false
	for time.Now().Before(deadline) && !seen && ctx.Err() == nil {
		seen = logHas(s.logPath, from, fetchStarted)
		if !seen {
			time.Sleep(time.Millisecond) // another process's log: nothing to block on
		}
	}
	r.rss.note(s)
	r.c.kill(s)
	midFetch := seen && !logHas(s.logPath, from, fetchDone)
	r.logf("SIGKILL follower %d after its snapshot fetch began: %v, before it ended: %v", s.id, seen, midFetch)
	if midFetch {
		r.installsCaught++
	}
	return r.restartAll, nil
}

// The runtime's log messages that open and close a snapshot fetch.
const (
	fetchStarted = "fetching the leader's snapshot"
	fetchDone    = "snapshot fetched"
)

func logSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logHas reports whether the log at path holds needle after offset from.
func logHas(path string, from int64, needle string) bool {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < from {
		return false
	}
	return strings.Contains(string(b[from:]), needle)
}

func (r *runner) isolateFollowerPastCompaction(ctx context.Context) (*server, error) {
	l := r.c.leader(ctx)
	if l == nil {
		return nil, fmt.Errorf("no leader")
	}
	var f *server
	for _, id := range r.shuffled() {
		if s := r.c.servers[uint64(id)]; s != l && r.c.running(s) {
			f = s
			break
		}
	}
	if f == nil {
		return nil, fmt.Errorf("no running follower")
	}
	others := slices.DeleteFunc(r.shuffled(), func(id int) bool { return id == int(f.id) })
	r.c.net.Partition([]int{int(f.id)}, others)
	fst, err := r.c.status(ctx, f)
	if err != nil {
		return f, fmt.Errorf("status of %d: %w", f.id, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return f, ctx.Err()
		}
		if l := r.c.leader(ctx); l != nil {
			if st, err := r.c.status(ctx, l); err == nil && st.FirstIndex > fst.LastIndex+1 {
				return f, nil
			}
		}
		time.Sleep(50 * time.Millisecond) // polling another process's state: nothing to block on
	}
	return f, fmt.Errorf("the leader did not compact past follower %d's index %d within 30s", f.id, fst.LastIndex)
}
