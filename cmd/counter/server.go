package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/client"
	"github.com/raftkit/raftkit/examples/counter"
	"github.com/raftkit/raftkit/metrics"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/tcp"
)

// serverConfig is a validated server command line.
type serverConfig struct {
	data, group, addr string
	listen            string
	sourceIP          net.IP
	http              string
	peers             []string
	tls               tlsFiles
	tick              time.Duration
	electionTicks     int
	snapshotEntries   int64
	snapshotMargin    uint64
	logLevel          slog.Level
	logFormat         string
	id                uint64
	join              bool
}

// tlsFiles are the --tls-cert, --tls-key and --tls-ca flags: all three or
// none, since raftkit's TLS is mutual (every host is server and client).
type tlsFiles struct{ tcp.TLSFiles }

func (t *tlsFiles) register(fs *flag.FlagSet) {
	fs.StringVar(&t.Cert, "tls-cert", "", "this host's certificate (PEM); enables mutual TLS with --tls-key and --tls-ca")
	fs.StringVar(&t.Key, "tls-key", "", "the certificate's private key (PEM)")
	fs.StringVar(&t.CA, "tls-ca", "", "the CA certificates (PEM) that peers' certificates must chain to")
}

func (t tlsFiles) validate() error {
	if err := t.Check(); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// load returns the TLS configuration, or nil for plain TCP.
func (t tlsFiles) load() (*tls.Config, error) { return t.Load() }

func serverCommand(raw *serverFlags) *command {
	fs := newFlagSet("server")
	fs.StringVar(&raw.data, "data", "", "directory of this server's log and hard state (required)")
	fs.StringVar(&raw.group, "group", counter.DefaultGroup, "name of the raft group")
	fs.StringVar(&raw.addr, "addr", "", "this server's raft address, one of --peers unless --join (required)")
	fs.StringVar(&raw.peers, "peers", "", "the group's initial servers, comma-separated, the same list on every server; a server's node ID is its position, from 1 (required)")
	fs.StringVar(&raw.listen, "listen", "", "where the raft port listens when peers reach this server at --addr through a proxy or port forward; default --addr")
	fs.StringVar(&raw.http, "http", "", "serve /status, /metrics and the status page on this address (HOST:PORT); off unless given")
	fs.StringVar(&raw.sourceIP, "source-ip", "", "the local IP address to dial peers from; default the system's choice")
	fs.BoolVar(&raw.join, "join", false, "start outside the initial configuration and wait to be added (raftctl add-peer ID@ADDR); needs --id")
	fs.Uint64Var(&raw.id, "id", 0, "this server's node ID; default its position in --peers; with --join, above the number of --peers")
	raw.tls.register(fs)
	fs.DurationVar(&raw.tick, "tick", 100*time.Millisecond, "length of one logical clock tick")
	fs.IntVar(&raw.electionTicks, "election-ticks", 10, "election timeout in ticks, randomized in [T, 2T)")
	fs.Int64Var(&raw.snapshotEntries, "snapshot-entries", 100_000, "snapshot the counter and compact the log every this many commands; -1: only on the timer (hourly)")
	fs.Uint64Var(&raw.snapshotMargin, "snapshot-margin", 1000, "entries kept behind a snapshot when the log is compacted, so slightly lagging followers need no install")
	fs.StringVar(&raw.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&raw.logFormat, "log-format", "json", "json or text; logs go to stderr")
	return &command{
		name:     "server",
		synopsis: "counter server --data DIR --addr HOST:PORT --peers A,B,C [flags]",
		about: "Hosts one member of a counter group and serves clients on the raft port until\n" +
			"SIGINT or SIGTERM, then shuts down cleanly.",
		fs: fs,
	}
}

// serverFlags are the server's flags as typed.
type serverFlags struct {
	data, group, addr, peers string
	listen, sourceIP, http   string
	tls                      tlsFiles
	tick                     time.Duration
	electionTicks            int
	snapshotEntries          int64
	snapshotMargin           uint64
	logLevel, logFormat      string
	id                       uint64
	join                     bool
}

// parseServerArgs validates a server command line without side effects.
func parseServerArgs(args []string) (serverConfig, *command, error) {
	var raw serverFlags
	cmd := serverCommand(&raw)
	pos, err := parseArgs(cmd.fs, args)
	if err != nil {
		return serverConfig{}, cmd, err
	}
	cfg, err := raw.validate(pos)
	return cfg, cmd, err
}

func (raw *serverFlags) validate(pos []string) (serverConfig, error) {
	cfg := serverConfig{data: raw.data, group: raw.group, addr: raw.addr, listen: raw.listen, http: raw.http, tls: raw.tls,
		tick: raw.tick, electionTicks: raw.electionTicks, snapshotEntries: raw.snapshotEntries, snapshotMargin: raw.snapshotMargin, logFormat: raw.logFormat,
		id: raw.id, join: raw.join}
	switch {
	case len(pos) > 0:
		return cfg, usagef("unexpected argument %q", pos[0])
	case raw.data == "":
		return cfg, usagef("--data is required")
	case raw.group == "":
		return cfg, usagef("--group must not be empty")
	case raw.peers == "":
		return cfg, usagef("--peers is required")
	case raw.addr == "":
		return cfg, usagef("--addr is required")
	case raw.tick < time.Millisecond:
		return cfg, usagef("--tick %v: want at least 1ms", raw.tick)
	case raw.electionTicks < 2:
		// The leader's heartbeat is one tick and must be shorter than the
		// election timeout, or followers would campaign between heartbeats.
		return cfg, usagef("--election-ticks %d: want at least 2", raw.electionTicks)
	case raw.snapshotEntries == 0 || raw.snapshotEntries < -1:
		return cfg, usagef("--snapshot-entries %d: want a positive count, or -1", raw.snapshotEntries)
	case raw.logFormat != "json" && raw.logFormat != "text":
		return cfg, usagef("--log-format %q: want json or text", raw.logFormat)
	}
	if err := cfg.logLevel.UnmarshalText([]byte(raw.logLevel)); err != nil {
		return cfg, usagef("--log-level %q: want debug, info, warn or error", raw.logLevel)
	}
	peers, err := counter.ParsePeers(raw.peers)
	if err != nil {
		return cfg, usagef("--peers: %v", strings.TrimPrefix(err.Error(), "counter: "))
	}
	cfg.peers = peers
	if _, _, err := net.SplitHostPort(raw.addr); err != nil {
		return cfg, usagef("--addr %q: %v", raw.addr, err)
	}
	if _, _, err := net.SplitHostPort(raw.listen); raw.listen != "" && err != nil {
		return cfg, usagef("--listen %q: %v", raw.listen, err)
	}
	if _, _, err := net.SplitHostPort(raw.http); raw.http != "" && err != nil {
		return cfg, usagef("--http %q: %v", raw.http, err)
	}
	if raw.sourceIP != "" {
		if cfg.sourceIP = net.ParseIP(raw.sourceIP); cfg.sourceIP == nil {
			return cfg, usagef("--source-ip %q: not an IP address", raw.sourceIP)
		}
	}
	switch in := slices.Index(peers, raw.addr) + 1; {
	case raw.join && in > 0:
		return cfg, usagef("--join: --addr %s must not be in --peers %s", raw.addr, raw.peers)
	case raw.join && raw.id <= uint64(len(peers)):
		return cfg, usagef("--join needs --id above %d, the number of --peers (got %d)", len(peers), raw.id)
	case !raw.join && in == 0:
		return cfg, usagef("--addr %s is not in --peers %s (use --join --id N to start outside them)", raw.addr, raw.peers)
	case !raw.join && raw.id != 0 && raw.id != uint64(in):
		return cfg, usagef("--id %d differs from the position %d of --addr in --peers", raw.id, in)
	}
	return cfg, raw.tls.validate()
}

func runServer(args []string, stdout, stderr io.Writer) int {
	cfg, cmd, err := parseServerArgs(args)
	if err == nil {
		err = serve(cfg, stderr)
	}
	return cmd.fail(stdout, stderr, err)
}

// serve runs the server until SIGINT or SIGTERM.
func serve(cfg serverConfig, logOut io.Writer) error {
	hopts := &slog.HandlerOptions{Level: cfg.logLevel}
	var h slog.Handler = slog.NewJSONHandler(logOut, hopts)
	if cfg.logFormat == "text" {
		h = slog.NewTextHandler(logOut, hopts)
	}
	log := slog.New(h)
	tlsCfg, err := cfg.tls.load()
	if err != nil {
		return err
	}
	// Subscribe before starting so that a signal arriving during start-up
	// is not lost (it would kill the process without a clean close).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	var obs *observability
	var sink metrics.Sink
	if cfg.http != "" {
		if obs, err = newObservability(); err != nil {
			return err
		}
		sink = obs.sink
	}
	srv, err := counter.StartServer(counter.ServerConfig{
		DataDir: cfg.data, Group: cfg.group, Addr: cfg.addr, ListenAddr: cfg.listen, SourceIP: cfg.sourceIP, Peers: cfg.peers, TLS: tlsCfg, NodeID: cfg.id, Join: cfg.join,
		TickInterval: cfg.tick, ElectionTicks: cfg.electionTicks, SnapshotEntries: cfg.snapshotEntries,
		SnapshotMarginEntries: cfg.snapshotMargin, Logger: log, Metrics: sink,
	})
	if err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	if err := srv.Host().RegisterService(localValueService, serveLocalValue(srv)); err != nil {
		_ = srv.Close()
		return fmt.Errorf("registering %s: %w", localValueService, err)
	}
	if err := srv.Host().RegisterService(runtimeService, serveRuntime); err != nil {
		_ = srv.Close()
		return fmt.Errorf("registering %s: %w", runtimeService, err)
	}
	if obs != nil {
		if err := obs.serve(cfg.http, srv.Host(), tlsCfg, log); err != nil {
			_ = srv.Close()
			return err
		}
	}
	log.Info("counter server started", "addr", cfg.addr, "group", cfg.group,
		"node", srv.Node().ID(), "peers", cfg.peers, "tls", tlsCfg != nil)
	sig := <-sigs
	// From here a second signal kills the process the default way, an
	// escape hatch should the close hang.
	signal.Stop(sigs)
	log.Info("counter server stopping", "signal", signalName(sig))
	if obs != nil {
		if err := obs.close(); err != nil {
			log.Warn("closing the status server", "err", err)
		}
	}
	if err := srv.Close(); err != nil {
		return fmt.Errorf("closing: %w", err)
	}
	log.Info("counter server stopped")
	return nil
}

// signalName is SIGINT or SIGTERM rather than Go's "interrupt" and
// "terminated".
func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// localValueService answers with this server's own replica of the counter,
// as far as it has applied its log: not linearizable (a follower may lag),
// which is what the demo and "client status" want to show. Linearizable
// reads are counter.ServiceGet.
const localValueService = "counter.local_value"

func serveLocalValue(srv *counter.Server) transport.ServiceHandler {
	return func(_ context.Context, group uint64, _ []byte) ([]byte, error) {
		if group != srv.Node().GroupID() {
			return nil, &raftkit.Error{Code: raftkit.CodeUnknownGroup, Msg: fmt.Sprintf("group %d is not served here", group)}
		}
		return binary.BigEndian.AppendUint64(nil, uint64(srv.StateMachine().Value())), nil
	}
}

// localValue asks the server at addr for its replica's value.
func localValue(ctx context.Context, caller client.Caller, addr, group string) (int64, error) {
	resp, err := caller.Call(ctx, addr, localValueService, raftkit.GroupIDFromName(group), nil)
	if err != nil {
		return 0, err
	}
	if len(resp) != 8 {
		return 0, fmt.Errorf("%s from %s: %d bytes, want 8", localValueService, addr, len(resp))
	}
	return int64(binary.BigEndian.Uint64(resp)), nil
}

// runtimeService answers with the process's goroutine count and heap
// size as JSON, so that the fault-injection suite can tell a leak from a
// process that settles after faults heal.
const runtimeService = "counter.runtime"

// runtimeStats is runtimeService's answer.
type runtimeStats struct {
	Goroutines int    `json:"goroutines"`
	HeapBytes  uint64 `json:"heap_bytes"`
}

func serveRuntime(context.Context, uint64, []byte) ([]byte, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return json.Marshal(runtimeStats{Goroutines: runtime.NumGoroutine(), HeapBytes: ms.HeapAlloc})
}
