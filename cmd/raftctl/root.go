package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/cli"
	"github.com/raftkit/raftkit/client"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/tcp"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// Defaults: the Counter example's three local servers and group.
const (
	defaultPeers   = "127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083"
	defaultGroup   = "counter"
	defaultTimeout = 10 * time.Second
)

// dialFunc opens what raftctl sends through, and returns the function
// that releases it. The real one opens a tcp.Client; tests pass an
// in-process network.
type dialFunc func(tlsCfg *tls.Config, dialTimeout time.Duration) (client.Caller, func(), error)

func dialTCP(tlsCfg *tls.Config, dialTimeout time.Duration) (client.Caller, func(), error) {
	c := tcp.NewClient(tcp.ClientOptions{TLS: tlsCfg, DialTimeout: dialTimeout})
	return c, func() { _ = c.Close() }, nil
}

// app is one run of the command: its streams, its seam to the network and
// the global flags.
type app struct {
	stdout, stderr io.Writer
	dial           dialFunc
	route          client.Options // the route tables' backoff; tests shorten it

	peers   string
	group   string
	timeout time.Duration
	tls     tlsFiles

	addrs   []string // --peers, validated
	release func()
}

// run executes one command line and returns the exit code. Everything the
// process touches comes in as arguments so that tests run it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, dial dialFunc, route client.Options) int {
	a := &app{stdout: stdout, stderr: stderr, dial: dial, route: route}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if a.release != nil {
		a.release()
	}
	return a.report(ctx, cmd, err)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "raftctl",
		Short: "Administer a raftkit group: membership, leadership, snapshots, status",
		Long: "raftctl administers a running raftkit group through the admin service every\n" +
			"NodeHost serves on its raft port. Membership changes, leadership transfer,\n" +
			"get-leader and list-peers go to the leader, found through --peers and the\n" +
			"servers' not-leader hints; snapshot, reset-peers and status go to the servers\n" +
			"named with --addr. The defaults reach the Counter example's local servers.",
		Example: "  raftctl list-peers\n" +
			"  raftctl --peers 10.0.0.1:8081,10.0.0.2:8081 --group orders add-peer 4@10.0.0.4:8081",
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: func(*cobra.Command, []string) error { return a.validate() },
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usagef("%v", err) })
	f := root.PersistentFlags()
	f.StringVar(&a.peers, "peers", defaultPeers, "the servers' raft addresses, comma-separated, to find the leader through")
	f.StringVar(&a.group, "group", defaultGroup, "name of the raft group (its ID is raftkit.GroupIDFromName of it)")
	f.DurationVar(&a.timeout, "timeout", defaultTimeout, "deadline of the whole operation, retries and leader changes included")
	a.tls.register(root)
	root.AddCommand(
		a.addPeerCommand(), a.removePeerCommand(), a.changePeersCommand(),
		a.addLearnersCommand(), a.removeLearnersCommand(), a.promoteLearnerCommand(),
		a.transferLeaderCommand(), a.snapshotCommand(), a.resetPeersCommand(),
		a.getLeaderCommand(), a.listPeersCommand(), a.statusCommand(),
	)
	return root
}

// validate checks the global flags.
func (a *app) validate() error {
	if a.group == "" {
		return usagef("--group must not be empty")
	}
	if a.timeout <= 0 {
		return usagef("--timeout %v: want a positive duration", a.timeout)
	}
	addrs, err := parseAddrs(a.peers)
	if err != nil {
		return usagef("--peers: %v", err)
	}
	a.addrs = addrs
	return a.tls.validate()
}

// parseAddrs splits a comma-separated list of HOST:PORT addresses,
// refusing empty entries and duplicates.
func parseAddrs(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("empty address in %q", list)
		}
		if err := cli.CheckAddr(s); err != nil {
			return nil, errors.New(reason(err))
		}
		if seen[s] {
			return nil, fmt.Errorf("address %s listed twice", s)
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, nil
}

// service connects and returns the admin client with the operation's
// context.
func (a *app) service(cmd *cobra.Command) (*cli.Service, context.Context, context.CancelFunc, error) {
	tlsCfg, err := a.tls.load()
	if err != nil {
		return nil, nil, nil, fail(err)
	}
	caller, release, err := a.dial(tlsCfg, min(a.timeout, 2*time.Second))
	if err != nil {
		return nil, nil, nil, fail(err)
	}
	a.release = release
	svc := cli.New(caller, a.addrs, raftkit.GroupIDFromName(a.group), cli.WithRouteOptions(a.route))
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	return svc, ctx, cancel, nil
}

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// failure is an operation that ran and failed: exit code 1. hint, if set,
// says what to do next.
type failure struct {
	err  error
	hint string
}

func (e *failure) Error() string { return e.err.Error() }
func (e *failure) Unwrap() error { return e.err }

func fail(err error) error { return &failure{err: err} }

// report prints err in one line on stderr and returns the exit code. Errors
// neither raised by an operation nor marked otherwise come from cobra's
// own parsing (unknown command or flag): usage errors.
func (a *app) report(ctx context.Context, cmd *cobra.Command, err error) int {
	if err == nil {
		return exitOK
	}
	name := "raftctl"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	var f *failure
	if !errors.As(err, &f) {
		fmt.Fprintf(a.stderr, "%s: %s (see %s --help)\n", name, oneLine(err.Error()), name)
		return exitUsage
	}
	msg := describe(f.err, strings.TrimPrefix(name, "raftctl "))
	if ctx.Err() != nil {
		fmt.Fprintf(a.stderr, "%s: interrupted: %s\n", name, oneLine(msg))
		return exitInterrupted
	}
	if f.hint != "" {
		msg += "; " + f.hint
	}
	fmt.Fprintf(a.stderr, "%s: %s\n", name, oneLine(msg))
	return exitFailure
}

// describe says what went wrong without the layers' prefixes: a server's
// refusal is its own message (which names the raftkit error class), plus
// the leader it pointed to; other errors lose the "cli: " and any of the
// given prefixes the line already shows (the operation, the address).
func describe(err error, shown ...string) string {
	var re *transport.RemoteError
	if errors.As(err, &re) && !errors.Is(err, context.DeadlineExceeded) {
		msg := re.Msg
		if re.Leader != "" && !strings.Contains(msg, re.Leader) {
			msg += " (leader " + re.Leader + ")"
		}
		return msg
	}
	msg := strings.TrimPrefix(err.Error(), "cli: ")
	for _, p := range shown {
		msg = strings.TrimPrefix(msg, p+": ")
	}
	return msg
}

// reason is an argument error's message without the
// "raftkit: invalid argument: " prefix.
func reason(err error) string {
	var e *raftkit.Error
	if errors.As(err, &e) && e.Msg != "" && e.Err == nil {
		return e.Msg
	}
	return err.Error()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
