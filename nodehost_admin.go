package raftkit

import (
	"context"
	"fmt"
	"slices"

	"github.com/raftkit/raftkit/internal/adminrpc"
)

// findAdmin finds the member of group that the admin service (raftctl,
// cli.Service) works through.
func (h *NodeHost) findAdmin(group uint64) (adminrpc.Admin, error) {
	n := h.Node(group)
	if n == nil {
		return nil, &Error{Code: CodeUnknownGroup, Msg: fmt.Sprintf("group %d is not served here", group)}
	}
	return nodeAdmin{n}, nil
}

// nodeAdmin adapts a Node to the admin service.
type nodeAdmin struct{ n *Node }

func toPeer(p adminrpc.Peer) Peer { return Peer{ID: p.ID, Addr: p.Addr} }

func toPeers(ps []adminrpc.Peer) []Peer {
	out := make([]Peer, 0, len(ps))
	for _, p := range ps {
		out = append(out, toPeer(p))
	}
	return out
}

func (a nodeAdmin) AddPeer(ctx context.Context, p adminrpc.Peer) error {
	return a.n.AddPeer(ctx, toPeer(p))
}

func (a nodeAdmin) RemovePeer(ctx context.Context, id uint64) error { return a.n.RemovePeer(ctx, id) }

func (a nodeAdmin) ChangePeers(ctx context.Context, voters []adminrpc.Peer) error {
	return a.n.ChangePeers(ctx, toPeers(voters))
}

func (a nodeAdmin) AddLearners(ctx context.Context, ps []adminrpc.Peer) error {
	return a.n.AddLearners(ctx, toPeers(ps))
}

func (a nodeAdmin) RemoveLearners(ctx context.Context, ids []uint64) error {
	return a.n.RemoveLearners(ctx, ids)
}

func (a nodeAdmin) PromoteLearner(ctx context.Context, id uint64) error {
	return a.n.PromoteLearner(ctx, id)
}

func (a nodeAdmin) TransferLeadership(ctx context.Context, id uint64) error {
	return a.n.TransferLeadershipTo(ctx, id)
}

func (a nodeAdmin) Snapshot(ctx context.Context) (uint64, uint64, error) {
	info, err := a.n.Snapshot(ctx)
	return info.Index, info.Term, err
}

func (a nodeAdmin) ResetPeers(ctx context.Context, voters []adminrpc.Peer) error {
	return a.n.ResetPeers(ctx, toPeers(voters))
}

func (a nodeAdmin) IsLeader() bool { return a.n.IsLeader() }

// Peers lists the configuration this member has appended; on the leader
// with each follower's match index and whether it answered recently.
func (a nodeAdmin) Peers() (adminrpc.Peer, []adminrpc.PeerState) {
	st := a.n.Status()
	leader := adminrpc.Peer{ID: st.Leader, Addr: st.LeaderAddr}
	state := func(id uint64, role adminrpc.Role) adminrpc.PeerState {
		ps := adminrpc.PeerState{ID: id, Addr: a.n.addr(id), Role: role}
		if id == st.NodeID {
			ps.Alive, ps.Match = st.State == StateRunning, st.LastIndex
			return ps
		}
		if i := slices.IndexFunc(st.Followers, func(f FollowerStatus) bool { return f.ID == id }); i >= 0 {
			ps.Alive, ps.Match = st.Followers[i].RecentActive, st.Followers[i].Match
		}
		return ps
	}
	var peers []adminrpc.PeerState
	for _, id := range st.Voters {
		peers = append(peers, state(id, adminrpc.RoleVoter))
	}
	for _, id := range st.OutgoingVoters {
		if !slices.Contains(st.Voters, id) {
			peers = append(peers, state(id, adminrpc.RoleVoter))
		}
	}
	for _, id := range st.Learners {
		peers = append(peers, state(id, adminrpc.RoleLearner))
	}
	return leader, peers
}
