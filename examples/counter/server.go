package counter

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/metrics"
	"github.com/raftkit/raftkit/storage/vfs"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/tcp"
)

// ServerConfig configures one counter server. A plain value.
type ServerConfig struct {
	// DataDir keeps the server's log and hard state; required.
	DataDir string
	// Group is the raft group's name; default DefaultGroup.
	Group string
	// Addr is this server's raft address; one of Peers unless Join.
	Addr string
	// ListenAddr is where the raft port listens when peers reach this
	// server at Addr through a proxy or port forward; default Addr.
	ListenAddr string
	// SourceIP, when set, is the local address this server dials its
	// peers from (the fault-injection suite tells servers apart by it).
	SourceIP net.IP
	// Metrics receives the host's measurements; nil discards them.
	Metrics metrics.Sink
	// Peers are the group's initial servers, the same list on every
	// server; a server's node ID is its position in the list, from 1.
	Peers []string
	// NodeID is this server's node ID; 0 means its position in Peers.
	// Join starts a server outside the initial configuration (it needs a
	// NodeID not taken by Peers) that waits to be added, with raftctl
	// add-peer or add-learners.
	NodeID uint64
	Join   bool
	// TLS secures the raft port when set.
	TLS *tls.Config
	// TickInterval and ElectionTicks set the election timeout; defaults
	// 100ms and 10 (a 1-2s randomized timeout).
	TickInterval  time.Duration
	ElectionTicks int
	Logger        *slog.Logger
	// SnapshotEntries snapshots the counter every that many commands and
	// compacts the log behind it (see raftkit.NodeOptions); 0: raftkit's
	// default.
	SnapshotEntries int64
	// SnapshotMarginEntries is how many entries compaction keeps behind a
	// snapshot for lagging followers; 0: raftkit's default.
	SnapshotMarginEntries uint64
	// FS and NewTransport replace the disk and the TCP transport in tests,
	// and SnapshotCaller the client that fetches snapshots from peers.
	FS             vfs.FS
	NewTransport   func(transport.Handler) (transport.Transport, error)
	SnapshotCaller raftkit.SnapshotCaller
}

// Server hosts the counter's state machine and serves its requests.
//
// Concurrency: safe for concurrent use.
type Server struct {
	host *raftkit.NodeHost
	node *raftkit.Node
	sm   *StateMachine
}

// ParsePeers splits a comma-separated address list, refusing empty entries,
// malformed host:port pairs and duplicates.
func ParsePeers(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("counter: empty address in peer list %q", list)
		}
		if _, _, err := net.SplitHostPort(p); err != nil {
			return nil, fmt.Errorf("counter: peer %q: %w", p, err)
		}
		if seen[p] {
			return nil, fmt.Errorf("counter: peer %q listed twice", p)
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

// StartServer opens the server's data, joins the group and starts serving.
func StartServer(cfg ServerConfig) (*Server, error) {
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	self, peers, err := cfg.identity()
	if err != nil {
		return nil, err
	}
	host, err := raftkit.NewNodeHost(raftkit.HostOptions{
		DataDir: cfg.DataDir, FS: cfg.FS, Addr: cfg.Addr, ListenAddr: cfg.ListenAddr, TLS: cfg.TLS,
		NewTransport: cfg.NewTransport, DialContext: dialFrom(cfg.SourceIP), Metrics: cfg.Metrics,
		TickInterval: cfg.TickInterval, Logger: cfg.Logger, SnapshotCaller: cfg.SnapshotCaller,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{host: host, sm: &StateMachine{}}
	s.node, err = host.StartNode(raftkit.NodeOptions{
		GroupID: raftkit.GroupIDFromName(cfg.Group), NodeID: self, Peers: peers, Join: cfg.Join,
		StateMachine: s.sm, ElectionTicks: cfg.ElectionTicks, SnapshotEntries: cfg.SnapshotEntries,
		SnapshotMarginEntries: cfg.SnapshotMarginEntries,
	})
	if err == nil {
		err = host.RegisterService(ServiceIncrement, s.serveIncrement)
	}
	if err == nil {
		err = host.RegisterService(ServiceGet, s.serveGet)
	}
	if err != nil {
		_ = host.Close()
		return nil, err
	}
	return s, nil
}

// identity returns this server's node ID and the initial voters.
func (cfg *ServerConfig) identity() (uint64, []raftkit.Peer, error) {
	var peers []raftkit.Peer
	pos := uint64(0)
	for i, a := range cfg.Peers {
		peers = append(peers, raftkit.Peer{ID: uint64(i + 1), Addr: a})
		if a == cfg.Addr {
			pos = uint64(i + 1)
		}
	}
	switch {
	case cfg.Join && pos != 0:
		return 0, nil, fmt.Errorf("counter: a joining server's address %s must not be in the peer list %v", cfg.Addr, cfg.Peers)
	case cfg.Join && cfg.NodeID <= uint64(len(peers)):
		return 0, nil, fmt.Errorf("counter: a joining server needs a node ID above the %d initial peers' (got %d)", len(peers), cfg.NodeID)
	case cfg.Join:
		return cfg.NodeID, peers, nil
	case pos == 0:
		return 0, nil, fmt.Errorf("counter: --addr %s is not in the peer list %v (use --join to start outside it)", cfg.Addr, cfg.Peers)
	case cfg.NodeID != 0 && cfg.NodeID != pos:
		return 0, nil, fmt.Errorf("counter: node ID %d differs from the position %d of %s in the peer list", cfg.NodeID, pos, cfg.Addr)
	}
	return pos, peers, nil
}

// Node is the server's member of the counter group.
func (s *Server) Node() *raftkit.Node { return s.node }

// Host is the server's NodeHost.
func (s *Server) Host() *raftkit.NodeHost { return s.host }

// StateMachine is the server's replica of the counter.
func (s *Server) StateMachine() *StateMachine { return s.sm }

// Close stops the server.
func (s *Server) Close() error { return s.host.Close() }

func (s *Server) serveIncrement(ctx context.Context, group uint64, req []byte) ([]byte, error) {
	delta, err := decodeValue(req)
	if err != nil {
		return nil, &raftkit.Error{Code: raftkit.CodeInvalidArgument, Err: err}
	}
	return s.run(ctx, group, encodeCommand(opIncrement, delta))
}

// serveGet answers with the counter's value after a read barrier in the
// mode the request names (see Client.GetWith): nothing goes through the log.
func (s *Server) serveGet(ctx context.Context, group uint64, req []byte) ([]byte, error) {
	if group != s.node.GroupID() {
		return nil, &raftkit.Error{Code: raftkit.CodeUnknownGroup, Msg: fmt.Sprintf("group %d is not served here", group)}
	}
	mode, err := decodeReadMode(req)
	if err != nil {
		return nil, &raftkit.Error{Code: raftkit.CodeInvalidArgument, Err: err}
	}
	if _, err := s.node.ReadIndex(ctx, mode); err != nil {
		return nil, err
	}
	return encodeValue(s.sm.Value()), nil
}

// run logs cmd and answers with the counter's value once it is applied.
func (s *Server) run(ctx context.Context, group uint64, cmd []byte) ([]byte, error) {
	if group != s.node.GroupID() {
		return nil, &raftkit.Error{Code: raftkit.CodeUnknownGroup, Msg: fmt.Sprintf("group %d is not served here", group)}
	}
	fut, err := s.node.Apply(raftkit.Task{Data: cmd})
	if err != nil {
		return nil, err
	}
	res, err := fut.Wait(ctx)
	if err != nil {
		return nil, err
	}
	v, ok := res.Value.(int64)
	if !ok {
		return nil, &raftkit.Error{Code: raftkit.CodeStateMachine, Msg: fmt.Sprintf("unexpected result %v", res.Value)}
	}
	return encodeValue(v), nil
}

// dialFrom returns a dialer binding the local address to ip; nil for nil.
func dialFrom(ip net.IP) tcp.DialFunc {
	if ip == nil {
		return nil
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	return d.DialContext
}
