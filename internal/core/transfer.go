package core

import (
	"fmt"

	"github.com/raftkit/raftkit/raftpb"
)

// TransferLeadership asks the leader to hand leadership to voter to. The
// leader stops accepting proposals, brings the target up to date, then tells
// it to campaign at once (MsgTimeoutNow). If the target has not taken over
// within an election timeout the transfer is abandoned and the leader serves
// proposals again.
func (r *Raft) TransferLeadership(to uint64) error {
	if r.role != RoleLeader {
		return ErrNotLeader
	}
	// A voter of the outgoing half only is being removed: it must not lead.
	if to == r.id || !r.isIncomingVoter(to) {
		return fmt.Errorf("%w: %d cannot take leadership", ErrUnknownPeer, to)
	}
	r.leadTransferee = to
	r.electionElapsed = 0
	r.logger.Info("transferring leadership", "to", to, "term", r.term)
	if r.trk.Progress[to].Match == r.log.lastIndex() {
		r.sendTimeoutNow(to)
	} else {
		r.sendAppend(to, false)
	}
	return nil
}

func (r *Raft) sendTimeoutNow(to uint64) {
	r.send(raftpb.Message{To: to, Type: raftpb.MsgTimeoutNow})
}
