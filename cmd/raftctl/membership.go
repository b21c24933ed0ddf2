package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/cli"
	"github.com/raftkit/raftkit/transport"
)

// do runs one operation with the admin client under --timeout, prints its
// one-line result, and marks its error as a failure. A change whose
// outcome is unknown says how to find out.
func (a *app) do(cmd *cobra.Command, change bool, op func(context.Context, *cli.Service) (string, error)) error {
	svc, ctx, cancel, err := a.service(cmd)
	if err != nil {
		return err
	}
	defer cancel()
	out, err := op(ctx, svc)
	if err != nil {
		f := &failure{err: err}
		if change && outcomeUnknown(err) {
			f.hint = "the change may still complete: check with raftctl list-peers"
		}
		return f
	}
	if out != "" {
		fmt.Fprintln(a.stdout, out)
	}
	return nil
}

// outcomeUnknown reports whether a change may have taken effect despite
// err: the deadline passed, the server timed out waiting, or the
// connection broke after sending.
func outcomeUnknown(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || cli.CodeOf(err) == raftkit.CodeTimeout ||
		errors.Is(err, transport.ErrConnectionLost)
}

// argsOf checks the number of positional arguments, naming what they are.
func argsOf(min, max int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		n := len(args)
		switch {
		case n >= min && (max < 0 || n <= max):
			return nil
		case min == max:
			return usagef("%s takes %s; got %d arguments", cmd.Name(), what, n)
		case max < 0:
			return usagef("%s needs %s", cmd.Name(), what)
		}
		return usagef("%s takes at most %s; got %d arguments", cmd.Name(), what, n)
	}
}

// peerList parses members given as one comma-separated argument or
// several.
func peerList(args []string) ([]raftkit.Peer, error) {
	ps, err := cli.ParsePeers(strings.Join(args, ","))
	if err != nil {
		return nil, usagef("%s", reason(err))
	}
	return ps, nil
}

func idList(args []string) ([]uint64, error) {
	ids, err := cli.ParseIDs(strings.Join(args, ","))
	if err != nil {
		return nil, usagef("%s", reason(err))
	}
	return ids, nil
}

func oneID(arg string) (uint64, error) {
	id, err := cli.ParseID(arg)
	if err != nil {
		return 0, usagef("%s", reason(err))
	}
	return id, nil
}

func joinPeers(ps []raftkit.Peer) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%d@%s", p.ID, p.Addr)
	}
	return strings.Join(s, ",")
}

func (a *app) addPeerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "add-peer ID@ADDR",
		Short: "Add a voting member",
		Long: "Adds a voter. It joins as a learner, catches up with the leader, and then the\n" +
			"group moves through a joint configuration to one that counts it. Start the new\n" +
			"server first (it may hold no data). Returns once the leader applied the change;\n" +
			"raise --timeout when the new member has a lot to catch up on.",
		Example: "  raftctl add-peer 4@127.0.0.1:8084",
		Args:    argsOf(1, 1, "one argument, ID@ADDR of the new member"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cli.ParsePeer(args[0])
			if err != nil {
				return usagef("%s", reason(err))
			}
			return a.do(cmd, true, func(ctx context.Context, s *cli.Service) (string, error) {
				return fmt.Sprintf("added voter %d@%s", p.ID, p.Addr), s.AddPeer(ctx, p)
			})
		},
	}
}

func (a *app) removePeerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove-peer ID",
		Short: "Remove a member, voter or learner",
		Long: "Removes a member. Removing the leader makes it hand leadership to the most\n" +
			"up-to-date remaining voter once the change commits.",
		Example: "  raftctl remove-peer 3",
		Args:    argsOf(1, 1, "one argument, the node ID to remove"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := oneID(args[0])
			if err != nil {
				return err
			}
			return a.do(cmd, true, func(ctx context.Context, s *cli.Service) (string, error) {
				return fmt.Sprintf("removed member %d", id), s.RemovePeer(ctx, id)
			})
		},
	}
}

func (a *app) changePeersCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "change-peers ID@ADDR,...",
		Short: "Replace the set of voters",
		Long: "Makes exactly the given members the voters, through a joint configuration;\n" +
			"new voters catch up as learners first, learners named become voters, and other\n" +
			"learners stay. Members may be one comma-separated argument or several.",
		Example: "  raftctl change-peers 1@127.0.0.1:8081,2@127.0.0.1:8082,4@127.0.0.1:8084",
		Args:    argsOf(1, -1, "the new voters, ID@ADDR,..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := peerList(args)
			if err != nil {
				return err
			}
			return a.do(cmd, true, func(ctx context.Context, s *cli.Service) (string, error) {
				return "voters are now " + joinPeers(ps), s.ChangePeers(ctx, ps)
			})
		},
	}
}

func (a *app) addLearnersCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "add-learners ID@ADDR,...",
		Short: "Add non-voting members",
		Long: "Adds learners: members that receive the log but never count in a quorum,\n" +
			"for read replicas or to catch a future voter up (see promote-learner).",
		Example: "  raftctl add-learners 5@127.0.0.1:8085,6@127.0.0.1:8086",
		Args:    argsOf(1, -1, "the learners, ID@ADDR,..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := peerList(args)
			if err != nil {
				return err
			}
			return a.do(cmd, true, func(ctx context.Context, s *cli.Service) (string, error) {
				return "added learners " + joinPeers(ps), s.AddLearners(ctx, ps)
			})
		},
	}
}

func (a *app) removeLearnersCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "remove-learners ID,...",
		Short:   "Remove non-voting members",
		Example: "  raftctl remove-learners 5,6",
		Args:    argsOf(1, -1, "the learners' node IDs, ID,..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := idList(args)
			if err != nil {
				return err
			}
			return a.do(cmd, true, func(ctx context.Context, s *cli.Service) (string, error) {
				return fmt.Sprintf("removed learners %s", strings.Trim(fmt.Sprint(ids), "[]")), s.RemoveLearners(ctx, ids)
			})
		},
	}
}

func (a *app) promoteLearnerCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "promote-learner ID",
		Short:   "Make a learner a voter",
		Long:    "Makes a learner a voter once it has caught up, through a joint configuration.",
		Example: "  raftctl promote-learner 5",
		Args:    argsOf(1, 1, "one argument, the learner's node ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := oneID(args[0])
			if err != nil {
				return err
			}
			return a.do(cmd, true, func(ctx context.Context, s *cli.Service) (string, error) {
				return fmt.Sprintf("promoted learner %d to voter", id), s.PromoteLearner(ctx, id)
			})
		},
	}
}

func (a *app) transferLeaderCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leader [ID]",
		Short: "Hand leadership to another voter",
		Long: "Hands leadership to voter ID, or without ID to the most up-to-date other\n" +
			"voter. The leader stops taking writes, brings the target up to date and lets it\n" +
			"campaign; it returns once the target leads.",
		Example: "  raftctl transfer-leader 2\n  raftctl transfer-leader",
		Args:    argsOf(0, 1, "one optional argument, the new leader's node ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var id uint64
			if len(args) == 1 {
				var err error
				if id, err = oneID(args[0]); err != nil {
					return err
				}
			}
			return a.do(cmd, true, func(ctx context.Context, s *cli.Service) (string, error) {
				l, err := s.TransferLeader(ctx, id)
				if l.ID == 0 {
					return "leadership moved", err
				}
				return fmt.Sprintf("leader is now %d@%s", l.ID, l.Addr), err
			})
		},
	}
}
