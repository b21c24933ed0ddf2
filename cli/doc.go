// Package cli is raftkit's CliService, after SOFAJRaft's: a Go client that
// administers a running raft group from outside it — add, remove and
// replace members, manage learners, move leadership, trigger snapshots,
// list the membership, and the unsafe ResetPeers recovery. The raftctl
// command is a thin shell over it.
//
//	svc := cli.New(tcp.NewClient(tcp.ClientOptions{}), []string{"10.0.0.1:8081", "10.0.0.2:8081"},
//		raftkit.GroupIDFromName("counter"))
//	p, _ := cli.ParsePeer("4@10.0.0.4:8081")
//	err := svc.AddPeer(ctx, p)
//
// # Routing
//
// Membership changes, leadership transfer, GetLeader and ListPeers are
// decided by the leader: a client.RouteTable sends them there, following
// the not-leader hints servers return and retrying busy and try-again
// answers until the context ends. A change whose outcome is unknown (the
// connection broke after sending, or the deadline passed) is never resent:
// the error says so, and ListPeers shows what happened. Snapshot,
// ResetPeers and Status act on one server and go to the address given.
//
// # Deadlines
//
// The context's deadline bounds the whole call and travels to the server,
// which stops waiting a little before it so that its own timeout error
// arrives; without a deadline the server applies its default (30 s).
//
// # Errors
//
// Bad arguments are refused before anything is sent, with errors matching
// raftkit.ErrInvalid. Servers' errors arrive as *transport.RemoteError
// with raftkit's code and, for "not leader", the leader's address; CodeOf
// reads the code of either kind.
//
// The package owns the client side of the admin protocol only; the
// protocol is internal/adminrpc and the decisions are the raft node's.
package cli
