package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/cli"
)

func (a *app) statusCommand() *cobra.Command {
	var addrs []string
	var watch time.Duration
	cmd := &cobra.Command{
		Use:   "status [--addr ADDR,...] [--watch[=INTERVAL]]",
		Short: "Print each server's view of the group, and the leader's of its followers",
		Long: "Asks each server (--addr, default every --peers address) for its status and\n" +
			"prints one row per server: node ID, role, term, commit, applied and last index,\n" +
			"and the leader it follows; then, from the leader, each follower's replication\n" +
			"state, match and next index, appends in flight and lag behind the leader.\n" +
			"Servers that do not answer are listed with the error. Fails only if none answers.\n" +
			"--watch redraws every INTERVAL (default 1s) until interrupted.",
		Example: "  raftctl status\n  raftctl status --addr 127.0.0.1:8082\n  raftctl status --watch=500ms",
		Args:    argsOf(0, 0, "no arguments (name servers with --addr)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			targets := a.addrs
			if len(addrs) > 0 {
				var err error
				if targets, err = parseAddrs(strings.Join(addrs, ",")); err != nil {
					return usagef("--addr: %v", err)
				}
			}
			if cmd.Flags().Changed("watch") {
				if watch < 10*time.Millisecond {
					return usagef("--watch %v: want an interval of at least 10ms", watch)
				}
				return a.watchStatus(cmd, targets, watch)
			}
			return a.do(cmd, false, func(ctx context.Context, s *cli.Service) (string, error) {
				rows := queryStatus(ctx, s, targets)
				writeStatus(a.stdout, rows)
				return "", answered(rows)
			})
		},
	}
	cmd.Flags().StringSliceVar(&addrs, "addr", nil, "the servers to ask, comma-separated or repeated (default: --peers)")
	cmd.Flags().DurationVar(&watch, "watch", time.Second, "redraw every interval until interrupted")
	cmd.Flags().Lookup("watch").NoOptDefVal = "1s"
	return cmd
}

// watchStatus redraws the status every interval until the command's
// context ends (Ctrl-C), each round bounded by --timeout. On a terminal
// each table replaces the last; elsewhere tables follow each other under a
// time stamp.
func (a *app) watchStatus(cmd *cobra.Command, targets []string, every time.Duration) error {
	svc, ctx, cancel, err := a.service(cmd)
	if err != nil {
		return err
	}
	cancel() // each round has its own deadline
	ctx = cmd.Context()
	tty := isTerminal(a.stdout)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rctx, rcancel := context.WithTimeout(ctx, a.timeout)
		rows := queryStatus(rctx, svc, targets)
		rcancel()
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		if tty {
			fmt.Fprint(a.stdout, "\x1b[H\x1b[2J")
		}
		fmt.Fprintf(a.stdout, "%s  (every %v; Ctrl-C to stop)\n", time.Now().Format("15:04:05.000"), every)
		writeStatus(a.stdout, rows)
		fmt.Fprintln(a.stdout)
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-t.C:
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// answered is nil if any server answered.
func answered(rows []statusRow) error {
	for _, r := range rows {
		if r.err == nil {
			return nil
		}
	}
	return fmt.Errorf("no server answered (first error: %w)", rows[0].err)
}

type statusRow struct {
	addr string
	st   raftkit.StatusJSON
	err  error
}

// queryStatus asks every addr at once, each within ctx.
func queryStatus(ctx context.Context, s *cli.Service, addrs []string) []statusRow {
	rows := make([]statusRow, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			st, err := s.Status(ctx, addr)
			rows[i] = statusRow{addr: addr, st: st, err: err}
		})
	}
	wg.Wait()
	return rows
}

// writeStatus prints the servers' table, then the followers' table of the
// leader with the highest term among those that answered.
func writeStatus(w io.Writer, rows []statusRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDR\tID\tROLE\tTERM\tCOMMIT\tAPPLIED\tLAST\tLEADER\tNOTE")
	var leader *raftkit.StatusJSON
	for i, r := range rows {
		if r.err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\tno answer: %s\n", r.addr, oneLine(describe(r.err, "status of "+r.addr)))
			continue
		}
		st := r.st
		if st.Role == raftkit.RoleLeader.String() && (leader == nil || st.Term > leader.Term) {
			leader = &rows[i].st
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.addr, st.NodeID, roleWord(st.Role),
			st.Term, st.CommitIndex, st.AppliedIndex, st.LastIndex, leaderOf(st), noteOf(st))
	}
	_ = tw.Flush()
	if leader == nil || len(leader.Followers) == 0 {
		return
	}
	fmt.Fprintf(w, "\nreplication from the leader, node %d (last index %d):\n", leader.NodeID, leader.LastIndex)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FOLLOWER\tADDR\tSTATE\tMATCH\tNEXT\tINFLIGHT\tLAG\tACTIVE")
	for _, f := range leader.Followers {
		lag := leader.LastIndex - min(f.Match, leader.LastIndex)
		active := "no"
		if f.RecentActive {
			active = "yes"
		}
		state := strings.ToLower(f.State)
		if f.IsLearner {
			state += " (learner)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", f.ID, f.Addr, state, f.Match, f.Next, f.Inflight, lag, active)
	}
	_ = tw.Flush()
}

func leaderOf(st raftkit.StatusJSON) string {
	if st.Leader == 0 {
		return "-"
	}
	l := strconv.FormatUint(st.Leader, 10)
	if st.LeaderAddr != "" {
		l += "@" + st.LeaderAddr
	}
	return l
}

func noteOf(st raftkit.StatusJSON) string {
	note := ""
	if st.State != raftkit.StateRunning.String() {
		note = st.State
		if st.Err != "" {
			note += ": " + st.Err
		}
	}
	if st.Installing != 0 {
		note = strings.TrimSpace(note + " installing snapshot " + strconv.FormatUint(st.Installing, 10))
	}
	return note
}
