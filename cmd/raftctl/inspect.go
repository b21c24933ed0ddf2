package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/cli"
)

func (a *app) getLeaderCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get-leader",
		Short:   "Print the leader as ID@ADDR",
		Example: "  raftctl get-leader\n  raftctl --peers 10.0.0.1:8081 --group orders get-leader",
		Args:    argsOf(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.do(cmd, false, func(ctx context.Context, s *cli.Service) (string, error) {
				l, err := s.GetLeader(ctx)
				return fmt.Sprintf("%d@%s", l.ID, l.Addr), err
			})
		},
	}
}

func (a *app) listPeersCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list-peers",
		Short: "Print the members with role, liveness and replication progress",
		Long: "Prints every member as the leader knows it: ROLE is leader, voter or learner;\n" +
			"ALIVE says whether the leader heard from it recently; MATCH is the highest log\n" +
			"index known replicated there.",
		Example: "  raftctl list-peers",
		Args:    argsOf(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.do(cmd, false, func(ctx context.Context, s *cli.Service) (string, error) {
				leader, ps, err := s.ListPeers(ctx)
				if err != nil {
					return "", err
				}
				writePeers(a.stdout, leader, ps)
				return "", nil
			})
		},
	}
}

func writePeers(w io.Writer, leader raftkit.Peer, ps []cli.PeerState) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDR\tROLE\tALIVE\tMATCH")
	for _, p := range ps {
		role := "voter"
		switch {
		case p.ID == leader.ID:
			role = "leader"
		case p.Learner:
			role = "learner"
		}
		alive := "no"
		if p.Alive {
			alive = "yes"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\n", p.ID, p.Addr, role, alive, p.Match)
	}
	_ = tw.Flush()
}

func (a *app) snapshotCommand() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "snapshot [--addr ADDR]",
		Short: "Make a server snapshot its state machine and compact its log",
		Long: "Makes the server at --addr (default: the leader) save a snapshot now and\n" +
			"compact its log up to it, and prints the snapshot's index and term.",
		Example: "  raftctl snapshot\n  raftctl snapshot --addr 127.0.0.1:8082",
		Args:    argsOf(0, 0, "no arguments (name the server with --addr)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr != "" {
				if err := cli.CheckAddr(addr); err != nil {
					return usagef("--addr: %s", reason(err))
				}
			}
			return a.do(cmd, false, func(ctx context.Context, s *cli.Service) (string, error) {
				index, term, err := s.Snapshot(ctx, addr)
				where := addr
				if where == "" {
					where = "the leader"
				}
				return fmt.Sprintf("snapshot of %s at index %d, term %d", where, index, term), err
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "the server to snapshot (default: the leader)")
	return cmd
}

const resetWarning = `WARNING: reset-peers is UNSAFE. It replaces the configuration of every server
named by --addr WITHOUT CONSENSUS. Use it only when a majority of the voters is
lost for good, on every surviving server, with the same voters. It can lose
committed entries, and if the lost servers come back the group can split in two.
`

func (a *app) resetPeersCommand() *cobra.Command {
	var addrs []string
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset-peers --addr ADDR,... --yes ID@ADDR,...",
		Short: "UNSAFE: force the voters of servers that lost their majority",
		Long: "Recovery of a group that has lost a majority of its voters for good: makes each\n" +
			"server at --addr replace its configuration with the given voters, without\n" +
			"consensus. Name every surviving server. One of them is then elected and logs the\n" +
			"configuration. It can lose committed entries; never use it while a majority of\n" +
			"the old configuration may still be alive. Requires --yes.",
		Example: "  # servers 2 and 3 are gone for good; 1 survives:\n" +
			"  raftctl reset-peers --addr 127.0.0.1:8081 --yes 1@127.0.0.1:8081",
		Args: argsOf(1, -1, "the new voters, ID@ADDR,..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			voters, err := peerList(args)
			if err != nil {
				return err
			}
			if len(addrs) == 0 {
				return usagef("--addr is required: name every surviving server")
			}
			for _, s := range addrs {
				if err := cli.CheckAddr(s); err != nil {
					return usagef("--addr: %s", reason(err))
				}
			}
			fmt.Fprint(a.stderr, resetWarning)
			if !yes {
				return usagef("refusing to reset without --yes")
			}
			return a.do(cmd, false, func(ctx context.Context, s *cli.Service) (string, error) {
				return a.resetAll(ctx, s, addrs, voters)
			})
		},
	}
	cmd.Flags().StringSliceVar(&addrs, "addr", nil, "the surviving servers to reset, comma-separated or repeated (required)")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm the unsafe reset")
	return cmd
}

// resetAll resets every server in turn, reporting each, and fails if any
// failed: the survivors must all agree.
func (a *app) resetAll(ctx context.Context, s *cli.Service, addrs []string, voters []raftkit.Peer) (string, error) {
	var failed []string
	for _, addr := range addrs {
		if err := s.ResetPeers(ctx, addr, voters); err != nil {
			fmt.Fprintf(a.stdout, "%s: FAILED: %s\n", addr, oneLine(describe(err, "reset-peers at "+addr)))
			failed = append(failed, addr)
			continue
		}
		fmt.Fprintf(a.stdout, "%s: voters reset to %s\n", addr, joinPeers(voters))
	}
	if len(failed) > 0 {
		return "", fmt.Errorf("reset failed on %s; run it again for those servers", strings.Join(failed, ", "))
	}
	return "", nil
}

// roleWord turns a raftkit role name ("PreCandidate") into the word the
// tables print ("pre-candidate").
func roleWord(role string) string {
	if role == raftkit.RolePreCandidate.String() {
		return "pre-candidate"
	}
	return strings.ToLower(role)
}
