package metrics

// The metrics raftkit reports. Group series carry the labels group and
// node (the group's ID and this member's node ID, in decimal); follower
// series add follower; host series carry host (the host's raft address).
// These values are read-only: nothing modifies them after declaration.
var (
	groupLabels    = []string{"group", "node"}
	followerLabels = []string{"group", "node", "follower"}
	hostLabels     = []string{"host"}

	// latencyBuckets span 50 µs to about 1.6 s, doubling.
	latencyBuckets = []float64{50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1.6e-3, 3.2e-3, 6.4e-3,
		12.8e-3, 25.6e-3, 51.2e-3, 102.4e-3, 204.8e-3, 409.6e-3, 819.2e-3, 1.6384}
	// batchBuckets count entries per batch, 1 to 4096.
	batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}

	Term          = &Desc{Name: "raftkit_term", Help: "The member's current term.", Labels: groupLabels}
	Role          = &Desc{Name: "raftkit_role", Help: "The member's role: 0 follower, 1 pre-candidate, 2 candidate, 3 leader, 4 learner.", Labels: groupLabels}
	CommitIndex   = &Desc{Name: "raftkit_commit_index", Help: "The highest log index known committed.", Labels: groupLabels}
	AppliedIndex  = &Desc{Name: "raftkit_applied_index", Help: "The highest log index the state machine applied.", Labels: groupLabels}
	LeaderChanges = &Desc{Name: "raftkit_leader_changes_total", Help: "Times the member saw the group's leader change (including to none).", Labels: groupLabels}
	PreVotes      = &Desc{Name: "raftkit_prevotes_total", Help: "Pre-vote rounds this member started.", Labels: groupLabels}
	Elections     = &Desc{Name: "raftkit_elections_total", Help: "Elections this member started (after winning a pre-vote, or without one).", Labels: groupLabels}
	ElectionsWon  = &Desc{Name: "raftkit_elections_won_total", Help: "Times this member became leader.", Labels: groupLabels}
	Proposals     = &Desc{Name: "raftkit_proposals_total", Help: "Tasks this member proposed as leader.", Labels: groupLabels}
	BusyRejected  = &Desc{Name: "raftkit_busy_rejections_total", Help: "Tasks refused with ErrBusy (queues or uncommitted log over budget).", Labels: groupLabels}
	ApplyBatch    = &Desc{Name: "raftkit_apply_batch_entries", Help: "Entries per batch handed to the state machine.", Labels: groupLabels, Buckets: batchBuckets}
	AppendLatency = &Desc{Name: "raftkit_log_append_seconds", Help: "Time from handing a Ready's entries to the log until they are durable.", Labels: groupLabels, Buckets: latencyBuckets}
	ReadLatency   = &Desc{Name: "raftkit_read_index_seconds", Help: "Time from a ReadIndex call until the read may proceed (safe and lease modes).", Labels: groupLabels, Buckets: latencyBuckets}
	ReadForwards  = &Desc{Name: "raftkit_read_forward_retries_total", Help: "Reads this follower forwarded to the leader again after an election timeout without an answer.", Labels: groupLabels}
	SnapSaves     = &Desc{Name: "raftkit_snapshot_saves_total", Help: "Snapshots this member saved.", Labels: groupLabels}
	SnapSaveBytes = &Desc{Name: "raftkit_snapshot_save_bytes_total", Help: "Bytes of the snapshots this member saved.", Labels: groupLabels}
	SnapInstalls  = &Desc{Name: "raftkit_snapshot_installs_total", Help: "Leader snapshots this member fetched and installed.", Labels: groupLabels}
	SnapInstBytes = &Desc{Name: "raftkit_snapshot_install_bytes_total", Help: "Bytes of the leader snapshots this member fetched.", Labels: groupLabels}

	FollowerMatch    = &Desc{Name: "raftkit_follower_match_index", Help: "On the leader: the highest index known replicated on the follower.", Labels: followerLabels}
	FollowerLag      = &Desc{Name: "raftkit_follower_lag_entries", Help: "On the leader: its last index minus the follower's match index.", Labels: followerLabels}
	FollowerInflight = &Desc{Name: "raftkit_follower_inflight_messages", Help: "On the leader: append requests to the follower awaiting acknowledgement.", Labels: followerLabels}

	LogBytes     = &Desc{Name: "raftkit_logengine_written_bytes_total", Help: "Bytes the host's log engine wrote.", Labels: hostLabels}
	LogFsyncs    = &Desc{Name: "raftkit_logengine_fsyncs_total", Help: "Group-commit fsyncs of the host's log engine.", Labels: hostLabels}
	LogFsyncTime = &Desc{Name: "raftkit_logengine_fsync_seconds", Help: "Duration of the log engine's group-commit fsyncs.", Labels: hostLabels, Buckets: latencyBuckets}
	FramesOut    = &Desc{Name: "raftkit_transport_sent_frames_total", Help: "Frames the host's transport sent.", Labels: hostLabels}
	FramesIn     = &Desc{Name: "raftkit_transport_received_frames_total", Help: "Frames the host's transport received.", Labels: hostLabels}
	BytesOut     = &Desc{Name: "raftkit_transport_sent_bytes_total", Help: "Bytes the host's transport sent.", Labels: hostLabels}
	BytesIn      = &Desc{Name: "raftkit_transport_received_bytes_total", Help: "Bytes the host's transport received.", Labels: hostLabels}
	Dials        = &Desc{Name: "raftkit_transport_dials_total", Help: "Outbound connections the host's transport opened or tried (reconnects included).", Labels: hostLabels}
	DialFailures = &Desc{Name: "raftkit_transport_dial_failures_total", Help: "Outbound connection attempts that failed.", Labels: hostLabels}
	DroppedSends = &Desc{Name: "raftkit_transport_dropped_messages_total", Help: "Messages the transport dropped (peer in backoff, queue over budget, or queued when a connection failed).", Labels: hostLabels}
)

// All lists every Desc above, for sinks that register up front and for
// documentation.
func All() []*Desc {
	return []*Desc{Term, Role, CommitIndex, AppliedIndex, LeaderChanges, PreVotes, Elections, ElectionsWon,
		Proposals, BusyRejected, ApplyBatch, AppendLatency, ReadLatency, ReadForwards, SnapSaves, SnapSaveBytes, SnapInstalls,
		SnapInstBytes, FollowerMatch, FollowerLag, FollowerInflight, LogBytes, LogFsyncs, LogFsyncTime,
		FramesOut, FramesIn, BytesOut, BytesIn, Dials, DialFailures, DroppedSends}
}
