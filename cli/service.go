package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/client"
	"github.com/raftkit/raftkit/internal/adminrpc"
	"github.com/raftkit/raftkit/transport"
)

// Service administers one raft group: membership, leadership, snapshots
// and the unsafe reset of a configuration, through the admin service every
// NodeHost serves on its raft port.
//
// Operations meant for the leader (membership changes, TransferLeader,
// GetLeader, ListPeers) are routed by a client.RouteTable, which finds and
// caches the leader and follows not-leader hints; Snapshot, ResetPeers and
// Status go to the server named in the call.
//
// Concurrency: safe for concurrent use. The group's leader runs one
// membership change at a time and refuses others as busy; the route table
// retries busy answers with backoff until the call's context ends, so
// concurrent changes queue up rather than fail.
type Service struct {
	caller client.Caller
	group  uint64
	// changes routes operations that may run long (a new member catching
	// up, a transfer): each attempt is bounded only by the call's context,
	// since giving up on one host early would leave the outcome unknown.
	changes *client.RouteTable
	// queries routes get-leader and list-peers, whose attempts are short,
	// so a hung host is skipped rather than waited for.
	queries *client.RouteTable
}

// Option configures a Service.
type Option func(*options)

type options struct{ route client.Options }

// WithRouteOptions sets the route tables' backoff and jitter seed, and the
// bound of one query attempt (AttemptTimeout; changes are bounded by their
// context alone).
func WithRouteOptions(o client.Options) Option {
	return func(opts *options) { opts.route = o }
}

// New returns a Service for group (see raftkit.GroupIDFromName), whose
// servers listen on peers, sending through caller (a *tcp.Client, or an
// in-process network in tests).
func New(caller client.Caller, peers []string, group uint64, opts ...Option) *Service {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	long := o.route
	long.AttemptTimeout = adminrpc.MaxTimeout
	s := &Service{
		caller: caller, group: group,
		changes: client.New(caller, long), queries: client.New(caller, o.route),
	}
	s.changes.SetPeers(group, peers)
	s.queries.SetPeers(group, peers)
	return s
}

// PeerState is one member of the group as the leader sees it.
type PeerState struct {
	ID   uint64
	Addr string
	// Learner is set for a non-voting member.
	Learner bool
	// Alive says the leader heard from the member recently; Match is the
	// highest log index known replicated there.
	Alive bool
	Match uint64
}

// AddPeer adds p as a voter; it returns once the leader has applied the
// new configuration. Errors as raftkit.Node.AddPeer, travelling as
// *transport.RemoteError (see CodeOf).
func (s *Service) AddPeer(ctx context.Context, p raftkit.Peer) error {
	_, err := s.change(ctx, &adminrpc.Request{Op: adminrpc.OpAddPeer, Peers: toWire([]raftkit.Peer{p})})
	return err
}

// RemovePeer removes member id, voter or learner.
func (s *Service) RemovePeer(ctx context.Context, id uint64) error {
	_, err := s.change(ctx, &adminrpc.Request{Op: adminrpc.OpRemovePeer, IDs: []uint64{id}})
	return err
}

// ChangePeers makes voters the group's voters.
func (s *Service) ChangePeers(ctx context.Context, voters []raftkit.Peer) error {
	_, err := s.change(ctx, &adminrpc.Request{Op: adminrpc.OpChangePeers, Peers: toWire(voters)})
	return err
}

// AddLearners adds non-voting members.
func (s *Service) AddLearners(ctx context.Context, learners []raftkit.Peer) error {
	_, err := s.change(ctx, &adminrpc.Request{Op: adminrpc.OpAddLearners, Peers: toWire(learners)})
	return err
}

// RemoveLearners removes non-voting members.
func (s *Service) RemoveLearners(ctx context.Context, ids []uint64) error {
	_, err := s.change(ctx, &adminrpc.Request{Op: adminrpc.OpRemoveLearners, IDs: slices.Clone(ids)})
	return err
}

// PromoteLearner makes learner id a voter.
func (s *Service) PromoteLearner(ctx context.Context, id uint64) error {
	_, err := s.change(ctx, &adminrpc.Request{Op: adminrpc.OpPromoteLearner, IDs: []uint64{id}})
	return err
}

// TransferLeader hands leadership to voter id, or with id 0 to the most
// up-to-date other voter, and returns the new leader as the old one knows
// it.
func (s *Service) TransferLeader(ctx context.Context, id uint64) (raftkit.Peer, error) {
	r := &adminrpc.Request{Op: adminrpc.OpTransferLeader}
	if id != 0 {
		r.IDs = []uint64{id}
	}
	resp, err := s.change(ctx, r)
	if err != nil {
		return raftkit.Peer{}, err
	}
	return fromWire(resp.Leader), nil
}

// GetLeader returns the group's leader. An answer from a member that knows
// of no leader is an error matching raftkit.ErrTryAgain.
func (s *Service) GetLeader(ctx context.Context) (raftkit.Peer, error) {
	resp, err := s.query(ctx, adminrpc.OpGetLeader)
	if err != nil {
		return raftkit.Peer{}, err
	}
	if resp.Leader.ID == 0 {
		return raftkit.Peer{}, &raftkit.Error{Code: raftkit.CodeTryAgain, Msg: "cli: get-leader: no leader known"}
	}
	return fromWire(resp.Leader), nil
}

// ListPeers returns the leader and every member, voters first, with
// liveness and replication progress. Servers whose admin service cannot
// tell whether they lead answer from any member; Alive and Match are then
// only meaningful if the leader answered.
func (s *Service) ListPeers(ctx context.Context) (leader raftkit.Peer, peers []PeerState, err error) {
	resp, err := s.query(ctx, adminrpc.OpListPeers)
	if err != nil {
		return raftkit.Peer{}, nil, err
	}
	for _, p := range resp.Peers {
		peers = append(peers, PeerState{ID: p.ID, Addr: p.Addr, Learner: p.Role == adminrpc.RoleLearner,
			Alive: p.Alive, Match: p.Match})
	}
	slices.SortStableFunc(peers, func(a, b PeerState) int {
		if a.Learner != b.Learner {
			if a.Learner {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return fromWire(resp.Leader), peers, nil
}

// Snapshot makes the member at addr save a snapshot and compact its log,
// and returns the snapshot's index and term. An empty addr selects the
// leader (found with GetLeader).
func (s *Service) Snapshot(ctx context.Context, addr string) (index, term uint64, err error) {
	if addr == "" {
		l, err := s.GetLeader(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("cli: snapshot: finding the leader: %w", err)
		}
		addr = l.Addr
	}
	resp, err := s.direct(ctx, addr, &adminrpc.Request{Op: adminrpc.OpSnapshot})
	if err != nil {
		return 0, 0, err
	}
	return resp.SnapshotIndex, resp.SnapshotTerm, nil
}

// ResetPeers is the UNSAFE recovery of a group that lost a majority of its
// voters for good: it makes the member at addr replace its configuration
// with voters, without consensus. Send it to every surviving member, with
// the same voters. See raftkit.Node.ResetPeers for what it can lose.
func (s *Service) ResetPeers(ctx context.Context, addr string, voters []raftkit.Peer) error {
	_, err := s.direct(ctx, addr, &adminrpc.Request{Op: adminrpc.OpResetPeers, Peers: toWire(voters)})
	return err
}

// Status returns the status of the member at addr (raftkit.StatusService).
func (s *Service) Status(ctx context.Context, addr string) (raftkit.StatusJSON, error) {
	var st raftkit.StatusJSON
	resp, err := s.caller.Call(ctx, addr, raftkit.StatusService, s.group, nil)
	if err != nil {
		return st, fmt.Errorf("cli: status of %s: %w", addr, err)
	}
	if err := json.Unmarshal(resp, &st); err != nil {
		return st, fmt.Errorf("cli: status of %s: malformed answer: %w", addr, err)
	}
	return st, nil
}

// CodeOf returns the raftkit error code err carries, whether it came from
// a server (a *transport.RemoteError) or was raised here (a
// *raftkit.Error); raftkit.CodeUnknown otherwise.
func CodeOf(err error) raftkit.Code {
	var re *transport.RemoteError
	if errors.As(err, &re) {
		return raftkit.Code(re.Code)
	}
	return raftkit.CodeOf(err)
}

// change sends a request that may take effect to the leader. It is never
// resent after an error that leaves its outcome unknown.
func (s *Service) change(ctx context.Context, r *adminrpc.Request) (*adminrpc.Response, error) {
	return s.invoke(ctx, s.changes, r, false)
}

// query sends a read-only request to the leader; it may be resent.
func (s *Service) query(ctx context.Context, op adminrpc.Op) (*adminrpc.Response, error) {
	return s.invoke(ctx, s.queries, &adminrpc.Request{Op: op}, true)
}

func (s *Service) invoke(ctx context.Context, rt *client.RouteTable, r *adminrpc.Request, idem client.Idempotent) (*adminrpc.Response, error) {
	body, err := s.encode(ctx, r)
	if err != nil {
		return nil, err
	}
	out, err := rt.Invoke(ctx, s.group, adminrpc.Service, body, idem)
	if err != nil {
		return nil, fmt.Errorf("cli: %s: %w", r.Op, err)
	}
	return decode(r.Op, out)
}

// direct sends a request to the member at addr only.
func (s *Service) direct(ctx context.Context, addr string, r *adminrpc.Request) (*adminrpc.Response, error) {
	if addr == "" {
		return nil, invalid("cli: %s needs the address of a server", r.Op)
	}
	body, err := s.encode(ctx, r)
	if err != nil {
		return nil, err
	}
	out, err := s.caller.Call(ctx, addr, adminrpc.Service, s.group, body)
	if err != nil {
		return nil, fmt.Errorf("cli: %s at %s: %w", r.Op, addr, err)
	}
	return decode(r.Op, out)
}

// encode validates r, bounding it on the server by ctx's deadline.
func (s *Service) encode(ctx context.Context, r *adminrpc.Request) ([]byte, error) {
	r.TimeoutMillis = timeoutMillis(ctx)
	body, err := adminrpc.EncodeRequest(r)
	if err != nil {
		return nil, &raftkit.Error{Code: raftkit.CodeInvalidArgument, Err: err}
	}
	return body, nil
}

func decode(op adminrpc.Op, out []byte) (*adminrpc.Response, error) {
	resp, err := adminrpc.DecodeResponse(out)
	if err != nil {
		return nil, fmt.Errorf("cli: %s: %w", op, err)
	}
	if !resp.OK {
		return nil, fmt.Errorf("cli: %s: the server answered without success: %s", op, resp.Message)
	}
	return resp, nil
}

// timeoutMillis is the server-side bound of a request sent under ctx: the
// time left, less a margin for the answer to travel back, so that the
// server's own timeout error (which says what happened) arrives before the
// caller gives up. 0 (the server's default) without a deadline.
func timeoutMillis(ctx context.Context) int64 {
	d, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	left := time.Until(d)
	left -= min(left/10, time.Second)
	return min(max(left.Milliseconds(), 1), adminrpc.MaxTimeout.Milliseconds())
}

func toWire(ps []raftkit.Peer) []adminrpc.Peer {
	out := make([]adminrpc.Peer, len(ps))
	for i, p := range ps {
		out[i] = adminrpc.Peer{ID: p.ID, Addr: p.Addr}
	}
	return out
}

func fromWire(p adminrpc.Peer) raftkit.Peer { return raftkit.Peer{ID: p.ID, Addr: p.Addr} }
