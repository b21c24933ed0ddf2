// Command counter runs raftkit's Counter example (after SOFAJRaft's) over
// real TCP: a replicated int64 that clients increment and read.
//
//	counter server --data DIR --addr HOST:PORT --peers A,B,C ...
//	counter client --peers A,B,C incr 5 | get | status | bench -n N -c C
//	counter demo [--keep] [--base-port 8081]
//
// server hosts one member of the group until SIGINT or SIGTERM; client
// finds the leader through raftkit's route table; demo starts a
// three-server cluster on this machine as child processes, narrates its
// elections from their logs, writes through the leader, kills it, and
// restarts it, for a newcomer to Raft to follow.
//
// Exit codes: 0 success, 1 failure, 2 bad command line, 130 interrupted.
package main
