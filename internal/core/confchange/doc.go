// Package confchange is the pure arithmetic of membership changes: which
// kind of change reaches a target configuration (Plan), what configuration
// a logged change produces (Apply), and what makes a configuration valid
// (Validate).
//
// Every voter change goes through a joint configuration (Raft thesis §4.3):
// ConfChangeEnterJoint makes the target's voters the incoming half and the
// current voters the outgoing half, so that every decision needs a majority
// of both, and ConfChangeLeaveJoint then drops the outgoing half. A change of
// learners alone is ConfChangeSimple, since learners count in no quorum.
//
// Because EnterJoint and LeaveJoint are relative to the configuration before
// them, every member must start from the group's initial configuration (or
// from a snapshot's), a member added later included; Apply refuses to enter
// a joint configuration from one without voters rather than guess.
//
// # What it never does
//
// It holds no state and does no IO: the core decides when to call it and
// what to do with the result. The runtime may call Apply to follow the
// configuration entries it applies exactly as the core does.
package confchange
