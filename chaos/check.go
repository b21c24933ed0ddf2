package chaos

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raftkit/raftkit/examples/counter"
)

// converge waits until every member has applied the same index, the
// leader's commit index, and holds the same value, then returns the value
// a linearizable read sees. Servers the group no longer counts (a member
// whose addition failed) are stopped first.
func (r *runner) converge(ctx context.Context) (int64, error) {
	deadline := time.Now().Add(convergeLimit)
	var why string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		v, reason := r.convergedValue(ctx)
		if reason == "" {
			cl := counter.NewClient(r.c.caller, r.c.proxies(), counter.DefaultGroup)
			gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			final, err := cl.Get(gctx)
			cancel()
			switch {
			case err != nil:
				reason = fmt.Sprintf("final read: %v", err)
			case final != v:
				return final, fmt.Errorf("a linearizable read returned %d, every replica holds %d", final, v)
			default:
				r.logf("converged: every member applied the same log; value %d", v)
				return final, nil
			}
		}
		why = reason
		time.Sleep(50 * time.Millisecond) // other processes' progress: nothing to block on
	}
	return 0, fmt.Errorf("the members did not converge within %v: %s", convergeLimit, why)
}

// convergedValue returns the common value when every member agrees, or a
// reason why they do not (yet).
func (r *runner) convergedValue(ctx context.Context) (int64, string) {
	l := r.c.leader(ctx)
	if l == nil {
		return 0, "no leader"
	}
	lst, err := r.c.status(ctx, l)
	if err != nil {
		return 0, err.Error()
	}
	members := append(slices.Clone(lst.Voters), lst.Learners...)
	for _, id := range r.c.ids() {
		if !slices.Contains(members, id) {
			r.logf("server %d is not a member; stopping it", id)
			r.c.stop(r.c.servers[id])
			delete(r.c.servers, id)
		}
	}
	var value int64
	for i, id := range members {
		s, ok := r.c.servers[id]
		if !ok {
			return 0, fmt.Sprintf("member %d is not a server the harness runs", id)
		}
		st, err := r.c.status(ctx, s)
		if err != nil {
			return 0, fmt.Sprintf("node %d: %v", id, err)
		}
		if st.AppliedIndex != lst.CommitIndex {
			return 0, fmt.Sprintf("node %d applied %d, the leader committed %d", id, st.AppliedIndex, lst.CommitIndex)
		}
		v, err := r.c.localValue(ctx, s)
		if err != nil {
			return 0, fmt.Sprintf("node %d value: %v", id, err)
		}
		if i > 0 && v != value {
			return 0, fmt.Sprintf("node %d holds %d, node %d holds %d at the same index", id, v, members[0], value)
		}
		value = v
	}
	return value, ""
}

// maxTerm is the highest term any running server reports.
func (r *runner) maxTerm(ctx context.Context) uint64 {
	var t uint64
	for _, id := range r.c.ids() {
		if st, err := r.c.status(ctx, r.c.servers[id]); err == nil {
			t = max(t, st.Term)
		}
	}
	return t
}

// rssTracker keeps the highest peak RSS seen of any server process.
type rssTracker struct{ max int64 }

// note reads s's peak RSS (VmHWM) while its process still exists.
func (t *rssTracker) note(s *server) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(s.cmd.Process.Pid), "status"))
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			t.max = max(t.max, kib)
		}
	}
}

// BuildCounter builds the counter binary from the module at root into dir
// and returns its path.
func BuildCounter(root, dir string) (string, error) {
	exe := filepath.Join(dir, "counter")
	cmd := exec.Command("go", "build", "-o", exe, "./cmd/counter")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/counter: %w\n%s", err, out)
	}
	return exe, nil
}
