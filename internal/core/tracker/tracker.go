package tracker

import (
	"fmt"
	"slices"

	"github.com/raftkit/raftkit/internal/core/quorum"
	"github.com/raftkit/raftkit/raftpb"
)

// Config is the membership the tracker counts with: voters (possibly joint)
// and learners.
//
// Invariant: Learners is disjoint from both halves of Voters.
type Config struct {
	Voters   quorum.JointConfig
	Learners map[uint64]struct{}
}

// ProgressTracker holds the configuration, the leader's per-peer Progress and
// the votes of the current election. All iteration is in ascending ID order so
// that the core's output is a deterministic function of its input.
type ProgressTracker struct {
	Config
	Progress map[uint64]*Progress
	Votes    map[uint64]bool

	ids              []uint64 // every member and retained peer, sorted
	retained         map[uint64]struct{}
	maxInflight      int
	maxInflightBytes uint64
}

// NewProgressTracker returns an empty tracker whose Progress windows are
// bounded by maxInflight messages and maxInflightBytes bytes.
func NewProgressTracker(maxInflight int, maxInflightBytes uint64) *ProgressTracker {
	return &ProgressTracker{
		Config: Config{
			Voters:   quorum.JointConfig{quorum.MajorityConfig{}, nil},
			Learners: map[uint64]struct{}{},
		},
		Progress:         map[uint64]*Progress{},
		Votes:            map[uint64]bool{},
		maxInflight:      maxInflight,
		maxInflightBytes: maxInflightBytes,
	}
}

// ApplyConf replaces the configuration with cs. Peers that stay keep their
// Progress; new peers start probing at lastIndex+1; peers that leave, and
// retained ones, are dropped.
func (t *ProgressTracker) ApplyConf(cs raftpb.ConfState, lastIndex uint64) error {
	return t.applyConf(cs, lastIndex, false)
}

// ApplyConfRetaining is ApplyConf, except that peers leaving the
// configuration are retained: they keep their Progress, marked IsLearner,
// and stay in IDs, so that a leader goes on replicating to them until they
// have learnt of their removal, but no quorum counts them. IsRetained tells
// them apart; DropRetained or the next ApplyConf forgets them.
func (t *ProgressTracker) ApplyConfRetaining(cs raftpb.ConfState, lastIndex uint64) error {
	return t.applyConf(cs, lastIndex, true)
}

// IsRetained reports whether id is a peer ApplyConfRetaining kept after it
// left the configuration.
func (t *ProgressTracker) IsRetained(id uint64) bool {
	_, ok := t.retained[id]
	return ok
}

// DropRetained forgets every retained peer.
func (t *ProgressTracker) DropRetained() {
	if len(t.retained) == 0 {
		return
	}
	ids := make([]uint64, 0, len(t.ids))
	for _, id := range t.ids {
		if _, ok := t.retained[id]; ok {
			delete(t.Progress, id)
		} else {
			ids = append(ids, id)
		}
	}
	t.ids = ids
	clear(t.retained)
}

func (t *ProgressTracker) applyConf(cs raftpb.ConfState, lastIndex uint64, retain bool) error {
	incoming := quorum.MajorityConfig{}
	for _, id := range cs.Voters {
		incoming[id] = struct{}{}
	}
	var outgoing quorum.MajorityConfig
	if len(cs.VotersOutgoing) > 0 {
		outgoing = quorum.MajorityConfig{}
		for _, id := range cs.VotersOutgoing {
			outgoing[id] = struct{}{}
		}
	}
	learners := map[uint64]struct{}{}
	for _, id := range cs.Learners {
		if _, ok := incoming[id]; ok {
			return fmt.Errorf("tracker: %d is both voter and learner", id)
		}
		if _, ok := outgoing[id]; ok {
			return fmt.Errorf("tracker: %d is both outgoing voter and learner", id)
		}
		learners[id] = struct{}{}
	}
	t.Voters = quorum.JointConfig{incoming, outgoing}
	t.Learners = learners

	members := t.Voters.IDs()
	for id := range learners {
		members[id] = struct{}{}
	}
	retained := map[uint64]struct{}{}
	if retain {
		for id := range t.Progress {
			if _, ok := members[id]; !ok {
				retained[id] = struct{}{}
			}
		}
	}
	t.retained = retained
	// A fresh slice: a caller may still be ranging over the old one.
	t.ids = make([]uint64, 0, len(members)+len(retained))
	for id := range members {
		t.ids = append(t.ids, id)
	}
	for id := range retained {
		t.ids = append(t.ids, id)
		t.Progress[id].IsLearner = true
	}
	slices.Sort(t.ids)
	for id := range t.Progress {
		_, member := members[id]
		if _, kept := retained[id]; !member && !kept {
			delete(t.Progress, id)
		}
	}
	for id := range members {
		_, learner := learners[id]
		if pr, ok := t.Progress[id]; ok {
			pr.IsLearner = learner
			continue
		}
		t.Progress[id] = NewProgress(lastIndex, t.maxInflight, t.maxInflightBytes, learner)
	}
	return nil
}

// ConfState returns the configuration as a ConfState with sorted members.
func (t *ProgressTracker) ConfState() raftpb.ConfState {
	cs := raftpb.ConfState{Voters: t.Voters[0].Slice()}
	if len(t.Voters[1]) > 0 {
		cs.VotersOutgoing = t.Voters[1].Slice()
	}
	for id := range t.Learners {
		cs.Learners = append(cs.Learners, id)
	}
	slices.Sort(cs.Learners)
	return cs
}

// IDs returns every member, voters and learners, and every retained peer,
// in ascending order. The slice is owned by the tracker and must not be
// modified; a configuration change replaces it rather than rewriting it.
func (t *ProgressTracker) IDs() []uint64 { return t.ids }

// IsVoter reports whether id votes in either half of the configuration.
func (t *ProgressTracker) IsVoter(id uint64) bool {
	_, in := t.Voters[0][id]
	_, out := t.Voters[1][id]
	return in || out
}

// IsSingleton reports whether this is a one-voter, non-joint configuration.
func (t *ProgressTracker) IsSingleton() bool {
	return len(t.Voters[0]) == 1 && len(t.Voters[1]) == 0
}

// matchAckIndexer lets the quorum maths read Match without copying.
type matchAckIndexer map[uint64]*Progress

func (m matchAckIndexer) AckedIndex(id uint64) (quorum.Index, bool) {
	pr, ok := m[id]
	if !ok {
		return 0, false
	}
	return quorum.Index(pr.Match), true
}

// Committed returns the largest index durable on a quorum of voters (on both
// halves of a joint configuration).
func (t *ProgressTracker) Committed() uint64 {
	return uint64(t.Voters.CommittedIndex(matchAckIndexer(t.Progress)))
}

// QuorumActive reports whether the peers heard from recently (RecentActive)
// form a quorum, on both halves of a joint configuration.
func (t *ProgressTracker) QuorumActive() bool {
	active := map[uint64]bool{}
	for _, id := range t.ids {
		pr := t.Progress[id]
		if !pr.IsLearner {
			active[id] = pr.RecentActive
		}
	}
	return t.Voters.VoteResult(active) == quorum.VoteWon
}

// ResetVotes forgets the votes of the previous election.
func (t *ProgressTracker) ResetVotes() { clear(t.Votes) }

// RecordVote records id's answer unless it already answered; a duplicated
// or reordered response cannot flip a vote.
func (t *ProgressTracker) RecordVote(id uint64, granted bool) {
	if _, ok := t.Votes[id]; !ok {
		t.Votes[id] = granted
	}
}

// TallyVotes counts the votes of voters and tells whether the election is
// won, lost or still pending.
func (t *ProgressTracker) TallyVotes() (granted, rejected int, result quorum.VoteResult) {
	for _, id := range t.ids {
		if !t.IsVoter(id) {
			continue
		}
		v, voted := t.Votes[id]
		if !voted {
			continue
		}
		if v {
			granted++
		} else {
			rejected++
		}
	}
	return granted, rejected, t.Voters.VoteResult(t.Votes)
}
