package raftkit

import (
	"strconv"
	"time"

	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/metrics"
)

// groupMetrics holds a member's metric handles, taken from the host's
// Sink once at start so that reporting on the hot path is a handle call.
//
// Concurrency: the handles are safe for concurrent use; followers is
// touched by the raft worker only.
type groupMetrics struct {
	sink   metrics.Sink
	labels []string

	term, role, commit, applied                              metrics.Gauge
	leaderChanges, preVotes, elections, won, proposals, busy metrics.Counter
	applyBatch, appendLatency, readLatency                   metrics.Histogram
	readForwardRetries                                       metrics.Counter
	snapSaves, snapSaveBytes, snapInstalls, snapInstallBytes metrics.Counter

	followers map[uint64]followerMetrics
}

type followerMetrics struct {
	labels               []string
	match, lag, inflight metrics.Gauge
}

func newGroupMetrics(sink metrics.Sink, group, node uint64) *groupMetrics {
	l := []string{strconv.FormatUint(group, 10), strconv.FormatUint(node, 10)}
	return &groupMetrics{
		sink: sink, labels: l,
		term: sink.Gauge(metrics.Term, l...), role: sink.Gauge(metrics.Role, l...),
		commit: sink.Gauge(metrics.CommitIndex, l...), applied: sink.Gauge(metrics.AppliedIndex, l...),
		leaderChanges: sink.Counter(metrics.LeaderChanges, l...), preVotes: sink.Counter(metrics.PreVotes, l...),
		elections: sink.Counter(metrics.Elections, l...), won: sink.Counter(metrics.ElectionsWon, l...),
		proposals: sink.Counter(metrics.Proposals, l...), busy: sink.Counter(metrics.BusyRejected, l...),
		applyBatch: sink.Histogram(metrics.ApplyBatch, l...), appendLatency: sink.Histogram(metrics.AppendLatency, l...),
		readLatency: sink.Histogram(metrics.ReadLatency, l...), readForwardRetries: sink.Counter(metrics.ReadForwards, l...),
		snapSaves: sink.Counter(metrics.SnapSaves, l...), snapSaveBytes: sink.Counter(metrics.SnapSaveBytes, l...),
		snapInstalls: sink.Counter(metrics.SnapInstalls, l...), snapInstallBytes: sink.Counter(metrics.SnapInstBytes, l...),
		followers: map[uint64]followerMetrics{},
	}
}

// onSoftState counts role and leader changes: entering pre-candidacy is a
// pre-vote round, candidacy an election, leadership a won election.
func (m *groupMetrics) onSoftState(prev, ss core.SoftState, term uint64) {
	m.term.Set(float64(term))
	m.role.Set(float64(ss.Role))
	if prev.Lead != ss.Lead {
		m.leaderChanges.Add(1)
	}
	if ss.Role == prev.Role {
		return
	}
	switch ss.Role {
	case core.RolePreCandidate:
		m.preVotes.Add(1)
	case core.RoleCandidate:
		m.elections.Add(1)
	case core.RoleLeader:
		m.won.Add(1)
	}
}

// updateFollowers reports the leader's view of each follower; a member
// that does not lead drops the series it reported while it did.
func (m *groupMetrics) updateFollowers(st core.Status) {
	if st.Role != core.RoleLeader {
		for id, f := range m.followers {
			m.forgetFollower(f)
			delete(m.followers, id)
		}
		return
	}
	for _, p := range st.Progress {
		if p.ID == st.ID {
			continue
		}
		f, ok := m.followers[p.ID]
		if !ok {
			l := append(append([]string(nil), m.labels...), strconv.FormatUint(p.ID, 10))
			f = followerMetrics{labels: l, match: m.sink.Gauge(metrics.FollowerMatch, l...),
				lag: m.sink.Gauge(metrics.FollowerLag, l...), inflight: m.sink.Gauge(metrics.FollowerInflight, l...)}
			m.followers[p.ID] = f
		}
		f.match.Set(float64(p.Match))
		f.lag.Set(float64(st.LastIndex - min(p.Match, st.LastIndex)))
		f.inflight.Set(float64(p.Inflight))
	}
}

func (m *groupMetrics) forgetFollower(f followerMetrics) {
	for _, d := range []*metrics.Desc{metrics.FollowerMatch, metrics.FollowerLag, metrics.FollowerInflight} {
		m.sink.Forget(d, f.labels...)
	}
}

// forget removes the member's series when it stops.
func (m *groupMetrics) forget() {
	for _, f := range m.followers {
		m.forgetFollower(f)
	}
	for _, d := range metrics.All() {
		if len(d.Labels) == 2 && d.Labels[0] == "group" {
			m.sink.Forget(d, m.labels...)
		}
	}
}

func seconds(d time.Duration) float64 { return d.Seconds() }
