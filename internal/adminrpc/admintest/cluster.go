// Package admintest is a fake raft group for the tests of the admin
// client and command: its members serve the real admin handler
// (adminrpc.NewHandler) and raftkit's status service on an in-process
// memnet network, over a membership held in memory. No raft runs; the
// fake answers as a correct group would, including not-leader hints, busy
// answers and injected failures.
package admintest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/internal/adminrpc"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport/memnet"
)

// Cluster is a fake group of members 1..n at 127.0.0.1:8081, :8082, ...
// (the Counter servers' addresses), member 1 leading.
//
// Concurrency: safe for concurrent use.
type Cluster struct {
	// Net is the network the members listen on; it is the Caller that
	// reaches them.
	Net   *memnet.Network
	Group uint64

	mu       sync.Mutex
	addrs    map[uint64]string
	voters   map[uint64]bool
	learners map[uint64]bool
	leader   uint64
	term     uint64
	dead     map[uint64]bool
	calls    []string
	fail     map[adminrpc.Op]error
	busy     int
	checker  bool
}

// Addr is the address of member id.
func Addr(id uint64) string { return fmt.Sprintf("127.0.0.1:%d", 8080+id) }

// New starts a fake group of n voters serving group. Its members tell
// whether they lead (adminrpc.LeaderChecker) unless plain is set. The
// network closes when t ends.
func New(t testing.TB, group uint64, n int, plain bool) *Cluster {
	c := &Cluster{
		Net: memnet.New(1), Group: group, addrs: map[uint64]string{}, voters: map[uint64]bool{},
		learners: map[uint64]bool{}, leader: 1, term: 1, dead: map[uint64]bool{},
		fail: map[adminrpc.Op]error{}, checker: !plain,
	}
	t.Cleanup(func() { _ = c.Net.Close() })
	for id := uint64(1); id <= uint64(n); id++ {
		c.voters[id] = true
		c.addrs[id] = Addr(id)
		c.Serve(t, id)
	}
	return c
}

// Serve starts member id's services at Addr(id), as when a new server is
// started to be added to the group.
func (c *Cluster) Serve(t testing.TB, id uint64) {
	ep, err := c.Net.Listen(Addr(id), noRaft{})
	if err != nil {
		t.Fatal(err)
	}
	var a adminrpc.Admin = &member{c: c, id: id}
	if c.checker {
		a = checkingMember{&member{c: c, id: id}}
	}
	ep.RegisterService(adminrpc.Service, adminrpc.NewHandler(func(g uint64) (adminrpc.Admin, error) {
		if g != c.Group {
			return nil, &raftkit.Error{Code: raftkit.CodeUnknownGroup, Msg: fmt.Sprintf("group %d is not served here", g)}
		}
		return a, nil
	}))
	ep.RegisterService(raftkit.StatusService, func(_ context.Context, g uint64, _ []byte) ([]byte, error) {
		if g != c.Group {
			return nil, &raftkit.Error{Code: raftkit.CodeUnknownGroup, Msg: fmt.Sprintf("group %d is not served here", g)}
		}
		return json.Marshal(c.status(id))
	})
}

type noRaft struct{}

func (noRaft) HandleRaft(uint64, *raftpb.Message) error { return nil }

// SetLeader makes id the leader (0: none known) in a new term.
func (c *Cluster) SetLeader(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = id
	c.term++
}

// Leader is the current leader's ID.
func (c *Cluster) Leader() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// Members returns the voters and learners, sorted.
func (c *Cluster) Members() (voters, learners []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.voters)), slices.Sorted(maps.Keys(c.learners))
}

// SetDead marks id as not heard from by the leader.
func (c *Cluster) SetDead(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead[id] = true
}

// Fail makes the next op fail with err, on whichever member runs it.
func (c *Cluster) Fail(op adminrpc.Op, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail[op] = err
}

// Busy makes the next n membership changes on the leader fail as busy.
func (c *Cluster) Busy(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy = n
}

// Calls returns every admin operation members ran, as "ID op args", in
// order; refused and failed ones included.
func (c *Cluster) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// status is member id's StatusJSON.
func (c *Cluster) status(id uint64) raftkit.StatusJSON {
	c.mu.Lock()
	defer c.mu.Unlock()
	role := raftkit.RoleFollower
	switch {
	case id == c.leader:
		role = raftkit.RoleLeader
	case c.learners[id]:
		role = raftkit.RoleLearner
	}
	st := raftkit.StatusJSON{
		GroupID: c.Group, NodeID: id, State: raftkit.StateRunning.String(), Role: role.String(),
		Term: c.term, Leader: c.leader, LeaderAddr: c.addrs[c.leader],
		CommitIndex: 100, AppliedIndex: 100 - min(id, 100), LastIndex: 100,
		Voters: slices.Sorted(maps.Keys(c.voters)),
	}
	if id == c.leader {
		for _, v := range st.Voters {
			if v != id {
				st.Followers = append(st.Followers, raftkit.FollowerStatus{ID: v, Addr: c.addrs[v], Match: 100 - v,
					Next: 101, State: "Replicate", Inflight: 1, RecentActive: true})
			}
		}
	}
	return st
}

// member is one member's Admin.
type member struct {
	c  *Cluster
	id uint64
}

// checkingMember adds adminrpc.LeaderChecker.
type checkingMember struct{ *member }

func (m checkingMember) IsLeader() bool {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	return m.c.leader == m.id
}

// begin records the call and returns the error it must fail with, if any;
// it holds c.mu until end.
func (m *member) begin(op adminrpc.Op, leaderOnly bool, args ...any) error {
	c := m.c
	c.mu.Lock()
	c.calls = append(c.calls, strings.TrimSpace(fmt.Sprintf("%d %s %s", m.id, op, fmt.Sprint(args...))))
	if err := c.fail[op]; err != nil {
		delete(c.fail, op)
		return err
	}
	if !leaderOnly {
		return nil
	}
	if c.leader != m.id {
		return &raftkit.Error{Code: raftkit.CodeNotLeader, Leader: c.addrs[c.leader], Msg: fmt.Sprintf("node %d does not lead", m.id)}
	}
	if c.busy > 0 {
		c.busy--
		return &raftkit.Error{Code: raftkit.CodeBusy, Msg: "a membership change is in progress"}
	}
	return nil
}

func (m *member) end() { m.c.mu.Unlock() }

func invalid(format string, args ...any) error {
	return &raftkit.Error{Code: raftkit.CodeInvalidArgument, Msg: fmt.Sprintf(format, args...)}
}

func (m *member) AddPeer(_ context.Context, p adminrpc.Peer) error {
	defer m.end()
	if err := m.begin(adminrpc.OpAddPeer, true, p); err != nil {
		return err
	}
	if m.c.voters[p.ID] {
		return invalid("add peer: %d is already a voter", p.ID)
	}
	delete(m.c.learners, p.ID)
	m.c.voters[p.ID], m.c.addrs[p.ID] = true, p.Addr
	return nil
}

func (m *member) RemovePeer(_ context.Context, id uint64) error {
	defer m.end()
	if err := m.begin(adminrpc.OpRemovePeer, true, id); err != nil {
		return err
	}
	if !m.c.voters[id] && !m.c.learners[id] {
		return invalid("remove peer: %d is not a member", id)
	}
	delete(m.c.voters, id)
	delete(m.c.learners, id)
	return nil
}

func (m *member) ChangePeers(_ context.Context, voters []adminrpc.Peer) error {
	defer m.end()
	if err := m.begin(adminrpc.OpChangePeers, true, voters); err != nil {
		return err
	}
	clear(m.c.voters)
	for _, p := range voters {
		delete(m.c.learners, p.ID)
		m.c.voters[p.ID], m.c.addrs[p.ID] = true, p.Addr
	}
	return nil
}

func (m *member) AddLearners(_ context.Context, ps []adminrpc.Peer) error {
	defer m.end()
	if err := m.begin(adminrpc.OpAddLearners, true, ps); err != nil {
		return err
	}
	for _, p := range ps {
		if m.c.voters[p.ID] || m.c.learners[p.ID] {
			return invalid("add learners: %d is already a member", p.ID)
		}
	}
	for _, p := range ps {
		m.c.learners[p.ID], m.c.addrs[p.ID] = true, p.Addr
	}
	return nil
}

func (m *member) RemoveLearners(_ context.Context, ids []uint64) error {
	defer m.end()
	if err := m.begin(adminrpc.OpRemoveLearners, true, ids); err != nil {
		return err
	}
	for _, id := range ids {
		if !m.c.learners[id] {
			return invalid("remove learners: %d is not a learner", id)
		}
	}
	for _, id := range ids {
		delete(m.c.learners, id)
	}
	return nil
}

func (m *member) PromoteLearner(_ context.Context, id uint64) error {
	defer m.end()
	if err := m.begin(adminrpc.OpPromoteLearner, true, id); err != nil {
		return err
	}
	if !m.c.learners[id] {
		return invalid("promote learner: %d is not a learner", id)
	}
	delete(m.c.learners, id)
	m.c.voters[id] = true
	return nil
}

func (m *member) TransferLeadership(_ context.Context, id uint64) error {
	defer m.end()
	if err := m.begin(adminrpc.OpTransferLeader, true, id); err != nil {
		return err
	}
	if id == 0 {
		for _, v := range slices.Sorted(maps.Keys(m.c.voters)) {
			if v != m.id {
				id = v
				break
			}
		}
	}
	if !m.c.voters[id] || id == m.id {
		return invalid("cannot transfer leadership to %d", id)
	}
	m.c.leader = id
	m.c.term++
	return nil
}

func (m *member) Snapshot(context.Context) (uint64, uint64, error) {
	defer m.end()
	if err := m.begin(adminrpc.OpSnapshot, false); err != nil {
		return 0, 0, err
	}
	return 100 - m.id, m.c.term, nil
}

func (m *member) ResetPeers(_ context.Context, voters []adminrpc.Peer) error {
	defer m.end()
	if err := m.begin(adminrpc.OpResetPeers, false, voters); err != nil {
		return err
	}
	clear(m.c.voters)
	clear(m.c.learners)
	for _, p := range voters {
		m.c.voters[p.ID], m.c.addrs[p.ID] = true, p.Addr
	}
	return nil
}

func (m *member) Peers() (adminrpc.Peer, []adminrpc.PeerState) {
	c := m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var leader adminrpc.Peer
	if c.leader != 0 {
		leader = adminrpc.Peer{ID: c.leader, Addr: c.addrs[c.leader]}
	}
	var out []adminrpc.PeerState
	for _, set := range []struct {
		ids  map[uint64]bool
		role adminrpc.Role
	}{{c.learners, adminrpc.RoleLearner}, {c.voters, adminrpc.RoleVoter}} {
		for _, id := range slices.Sorted(maps.Keys(set.ids)) {
			out = append(out, adminrpc.PeerState{ID: id, Addr: c.addrs[id], Role: set.role,
				Alive: !c.dead[id], Match: 100 - min(id, 100)})
		}
	}
	return leader, out
}
