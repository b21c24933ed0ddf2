// Command raftctl administers a running raftkit group, after SOFAJRaft's
// CliService: membership changes, learners, leadership transfer,
// snapshots, the membership and each server's status, and the unsafe
// reset-peers recovery.
//
//	raftctl [--peers A,B,C] [--group NAME] [--timeout D] <command> [args]
//
//	add-peer ID@ADDR            remove-peer ID          change-peers ID@ADDR,...
//	add-learners ID@ADDR,...    remove-learners ID,...  promote-learner ID
//	transfer-leader [ID]        snapshot [--addr ADDR]  get-leader
//	list-peers                  status [--addr ADDR,...]
//	reset-peers --addr ADDR,... --yes ID@ADDR,...
//
// The defaults reach the Counter example's three local servers
// (127.0.0.1:8081-8083, group "counter"). It is a thin shell over package
// cli; the commands' --help has an example each.
//
// Exit codes: 0 success, 1 the operation failed, 2 bad command line, 130
// interrupted. Errors are one line on stderr.
package main
