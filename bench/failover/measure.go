package failover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/raftkit/raftkit/bench/harness"
)

// Timing of the writer loop, as the issue fixes it.
const (
	writeEvery   = 5 * time.Millisecond
	writeTimeout = 500 * time.Millisecond
	// afterKillLimit bounds the wait for a write after the kill; far above
	// any sane failover, so hitting it means the cluster did not recover.
	afterKillLimit = 60 * time.Second
)

// Options configures Measure.
type Options struct {
	// Exe is re-executed as "Exe replica <flags>" per replica.
	Exe string
	// Dir is the parent of the replicas' fresh data directories.
	Dir                        string
	Reps                       int
	ElectionTimeout, Heartbeat time.Duration
	// Log receives a line per repetition; Verbose also copies the
	// replicas' stderr there.
	Log     io.Writer
	Verbose bool
}

// Measure runs o.Reps failover repetitions of system, each on a fresh
// cluster. Failed repetitions are recorded and the next one runs; ctx's end
// stops it early.
func Measure(ctx context.Context, system string, o Options) harness.FailoverResult {
	res := harness.FailoverResult{System: system}
	for rep := range o.Reps {
		if ctx.Err() != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("rep %d: %v", rep+1, ctx.Err()))
			break
		}
		d, err := once(ctx, system, o, rep)
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("rep %d: %v", rep+1, err))
		} else {
			res.Times = append(res.Times, d)
		}
		if o.Log != nil {
			msg := fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
			if err != nil {
				msg = "FAILED: " + err.Error()
			}
			fmt.Fprintf(o.Log, "failover %-10s rep %d/%d: %s\n", system, rep+1, o.Reps, msg)
		}
	}
	return res
}

// once is one repetition: start, wait for a leader, write until a write
// succeeds, SIGKILL the leader, time the first write that succeeds after.
func once(ctx context.Context, system string, o Options, rep int) (time.Duration, error) {
	c, err := start(ctx, system, o, rep)
	if err != nil {
		return 0, err
	}
	defer c.stop()
	if _, err := c.waitLeader(ctx, harness.LeaderTimeout); err != nil {
		return 0, err
	}
	if _, _, err := c.writeUntil(ctx, c.live(), harness.LeaderTimeout); err != nil {
		return 0, fmt.Errorf("before kill: %w", err)
	}
	// The write succeeded on the leader (followers answer 409), but
	// leadership may have moved since; ask again right before the kill.
	leader, err := c.waitLeader(ctx, harness.LeaderTimeout)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	c.kill(leader)
	_, t1, err := c.writeUntil(ctx, c.live(), afterKillLimit)
	if err != nil {
		return 0, fmt.Errorf("after kill: %w", err)
	}
	return t1.Sub(t0), nil
}

// cluster is three replica processes of one repetition.
type cluster struct {
	procs  []*exec.Cmd
	exited []chan struct{} // closed once the process is reaped
	killed []bool
	tails  []*harness.Tail
	ctl    []string
	dirs   []string
	client *http.Client
}

// start picks ports and directories and starts the three replicas.
func start(ctx context.Context, system string, o Options, rep int) (*cluster, error) {
	ports, err := harness.FreePorts(6)
	if err != nil {
		return nil, err
	}
	c := &cluster{ctl: ports[3:], client: &http.Client{Transport: &http.Transport{}}}
	for i := range 3 {
		d, err := os.MkdirTemp(o.Dir, fmt.Sprintf("failover-%s-%d-r%d-", system, rep+1, i))
		if err == nil && strings.Contains(d, ",") {
			err = errors.New("comma in temp dir path (dirs travel comma-separated)")
		}
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("data dir: %w", err)
		}
		c.dirs = append(c.dirs, d)
	}
	for i := range 3 {
		spec := ReplicaSpec{
			System: system, ID: i, Addrs: ports[:3], Dirs: c.dirs, Ctl: c.ctl[i],
			ElectionTimeout: o.ElectionTimeout, Heartbeat: o.Heartbeat,
		}
		if err := c.spawn(ctx, o, spec); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

func (c *cluster) spawn(ctx context.Context, o Options, spec ReplicaSpec) error {
	cmd := harness.Command(ctx, o.Exe, append([]string{"replica"}, spec.Args()...)...)
	tail := harness.NewTail(8 << 10)
	cmd.Stderr = tail
	if o.Verbose && o.Log != nil {
		cmd.Stderr = io.MultiWriter(tail, o.Log)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start replica %d: %w", spec.ID, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	c.procs = append(c.procs, cmd)
	c.exited = append(c.exited, done)
	c.killed = append(c.killed, false)
	c.tails = append(c.tails, tail)
	return nil
}

// kill SIGKILLs replica i without waiting for it to be reaped.
func (c *cluster) kill(i int) {
	c.killed[i] = true
	c.procs[i].Process.Kill()
}

// stop kills and reaps every replica, closes idle connections and
// removes the data directories.
func (c *cluster) stop() {
	for i, p := range c.procs {
		p.Process.Kill() // fails harmlessly if already dead
		<-c.exited[i]
	}
	c.client.CloseIdleConnections()
	for _, d := range c.dirs {
		os.RemoveAll(d)
	}
}

// live lists the replicas not killed on purpose.
func (c *cluster) live() []int {
	var l []int
	for i, k := range c.killed {
		if !k {
			l = append(l, i)
		}
	}
	return l
}

// crashed returns an error if a replica that was not killed on purpose
// has exited, with the end of its stderr.
func (c *cluster) crashed() error {
	for _, i := range c.live() {
		select {
		case <-c.exited[i]:
			return fmt.Errorf("replica %d exited: %v%s", i, c.procs[i].ProcessState, c.tails[i].Indented())
		default:
		}
	}
	return nil
}
