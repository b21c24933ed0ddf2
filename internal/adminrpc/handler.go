package adminrpc

import (
	"context"
	"fmt"

	"github.com/raftkit/raftkit/transport"
)

// Admin is the administration a group member offers; the server side
// adapts *raftkit.Node to it. Errors should implement transport.WireError
// (raftkit's *Error does) so that their codes and leader hints reach the
// caller.
//
// Concurrency: the handler calls an Admin from one goroutine per request,
// so implementations must be safe for concurrent use.
type Admin interface {
	AddPeer(ctx context.Context, p Peer) error
	RemovePeer(ctx context.Context, id uint64) error
	ChangePeers(ctx context.Context, voters []Peer) error
	AddLearners(ctx context.Context, ps []Peer) error
	RemoveLearners(ctx context.Context, ids []uint64) error
	PromoteLearner(ctx context.Context, id uint64) error
	// TransferLeadership hands leadership to id, or with id 0 to the best
	// other voter.
	TransferLeadership(ctx context.Context, id uint64) error
	Snapshot(ctx context.Context) (index, term uint64, err error)
	ResetPeers(ctx context.Context, voters []Peer) error
	// Peers is the membership as this node knows it; leader.ID is 0 when
	// no leader is known.
	Peers() (leader Peer, peers []PeerState)
}

// LeaderChecker is optionally implemented by an Admin. With it, list-peers
// and get-leader sent to a member that does not lead fail with a
// not-leader error naming the leader (or try-again when none is known),
// so that routing clients reach the leader, whose answer alone carries
// liveness and match indexes. Without it, any member answers with its own
// view.
type LeaderChecker interface {
	IsLeader() bool
}

// opFunc runs one operation on a, filling resp's operation-specific fields.
type opFunc func(ctx context.Context, a Admin, r *Request, resp *Response) error

// ops dispatches each Op; Validate has already fixed how many Peers and
// IDs it carries, so the indexing below cannot fail.
var ops = map[Op]opFunc{
	OpAddPeer: func(ctx context.Context, a Admin, r *Request, _ *Response) error {
		return a.AddPeer(ctx, r.Peers[0])
	},
	OpRemovePeer: func(ctx context.Context, a Admin, r *Request, _ *Response) error {
		return a.RemovePeer(ctx, r.IDs[0])
	},
	OpChangePeers: func(ctx context.Context, a Admin, r *Request, _ *Response) error {
		return a.ChangePeers(ctx, r.Peers)
	},
	OpAddLearners: func(ctx context.Context, a Admin, r *Request, _ *Response) error {
		return a.AddLearners(ctx, r.Peers)
	},
	OpRemoveLearners: func(ctx context.Context, a Admin, r *Request, _ *Response) error {
		return a.RemoveLearners(ctx, r.IDs)
	},
	OpPromoteLearner: func(ctx context.Context, a Admin, r *Request, _ *Response) error {
		return a.PromoteLearner(ctx, r.IDs[0])
	},
	OpTransferLeader: func(ctx context.Context, a Admin, r *Request, _ *Response) error {
		var id uint64
		if len(r.IDs) == 1 {
			id = r.IDs[0]
		}
		return a.TransferLeadership(ctx, id)
	},
	OpSnapshot: func(ctx context.Context, a Admin, _ *Request, resp *Response) error {
		var err error
		resp.SnapshotIndex, resp.SnapshotTerm, err = a.Snapshot(ctx)
		return err
	},
	OpResetPeers: func(ctx context.Context, a Admin, r *Request, _ *Response) error {
		return a.ResetPeers(ctx, r.Peers)
	},
	OpListPeers: leaderOnly,
	OpGetLeader: leaderOnly,
}

// leaderOnly refuses to answer from a member that knows it does not lead.
func leaderOnly(_ context.Context, a Admin, r *Request, _ *Response) error {
	lc, ok := a.(LeaderChecker)
	if !ok || lc.IsLeader() {
		return nil
	}
	leader, _ := a.Peers()
	if leader.ID == 0 || leader.Addr == "" {
		return &routeError{code: codeTryAgain, msg: fmt.Sprintf("%s: no leader known yet", r.Op)}
	}
	return &routeError{code: codeNotLeader, leader: leader.Addr,
		msg: fmt.Sprintf("%s: not the leader; node %d leads", r.Op, leader.ID)}
}

// routeError sends a caller elsewhere: to the leader, or back after a
// pause. It keeps raftkit's wire codes.
type routeError struct {
	code   uint16
	leader string
	msg    string
}

func (e *routeError) Error() string { return "adminrpc: " + e.msg }

// WireError implements transport.WireError.
func (e *routeError) WireError() (uint16, string) { return e.code, e.leader }

// NewHandler returns the admin service's handler: it decodes the request,
// finds the group's Admin with find, bounds the operation by the request's
// timeout, runs it, and answers with the outcome and the membership the
// node knows afterwards. Errors from find and from the Admin are returned
// unchanged, so their wire codes and leader hints reach the caller;
// malformed requests fail with errors matching ErrBadRequest.
//
// The handler is safe for concurrent use if find and the Admins are.
func NewHandler(find func(group uint64) (Admin, error)) transport.ServiceHandler {
	return func(ctx context.Context, group uint64, req []byte) ([]byte, error) {
		r, err := DecodeRequest(req)
		if err != nil {
			return nil, err
		}
		a, err := find(group)
		if err != nil {
			return nil, err
		}
		if a == nil {
			return nil, &routeError{code: codeUnknownGroup, msg: fmt.Sprintf("group %d is not served here", group)}
		}
		ctx, cancel := context.WithTimeout(ctx, r.Timeout())
		defer cancel()
		resp := &Response{}
		if err := ops[r.Op](ctx, a, r, resp); err != nil {
			return nil, err
		}
		resp.OK = true
		resp.Leader, resp.Peers = a.Peers()
		resp.Message = summary(r, resp)
		return EncodeResponse(resp)
	}
}

// summary is the Response.Message of a successful operation.
func summary(r *Request, resp *Response) string {
	switch r.Op {
	case OpSnapshot:
		return fmt.Sprintf("snapshot at index %d, term %d", resp.SnapshotIndex, resp.SnapshotTerm)
	case OpTransferLeader, OpGetLeader:
		if resp.Leader.ID == 0 {
			return "no leader known"
		}
		return fmt.Sprintf("leader is %s", resp.Leader)
	case OpListPeers:
		return fmt.Sprintf("%d members", len(resp.Peers))
	}
	return string(r.Op) + " done"
}
