// Package chaos is raftkit's fault-injection suite, after Jepsen: it runs
// real counter server processes (cmd/counter) on loopback, routes every
// link between them through a fault proxy (chaos/faultnet), drives a
// workload of sequential clients that increment with unique deltas and
// read through ReadIndex, injects faults, and checks the recorded history
// (chaos/checker): linearizability with porcupine, no acknowledged
// increment lost or applied twice, every member converged to the same
// applied index and value after healing, a successful write within 5 s of
// healing a 3-node group, and each server's peak RSS under 1 GiB.
//
// How links are faulted: server i listens on its own loopback address and
// advertises a proxy address (counter server --listen/--addr); it dials
// its peers from 127.0.0.(10+i) (--source-ip), so the proxy in front of
// each server knows which server every connection comes from and can
// drop any directed link. Clients dial from 127.0.0.1 and are never cut
// off: a partition separates servers, as in Jepsen.
//
// Faults (see Scenarios): partitions (random halves, the leader isolated,
// a majority ring, a bridge, the leader unable to send), SIGKILL of a
// minority or of every server, SIGSTOP of the leader for several election
// timeouts, a member removed and a new one added while faults hold,
// leadership transfer under load, a follower cut off until the leader
// compacted past it (a snapshot install follows), and a crash during that
// install.
//
// Run is one run; cmd/raftchaos runs a matrix and prints a table. A failed
// run keeps its data directories, server logs (JSON), history
// (history.jsonl, history.html, final) and prints the command that reruns
// it; raftchaos -recheck checks a kept history again.
//
// It owns processes, proxies and temporary directories for the length of
// a run and never leaves them behind after a passing run; it never
// touches the library's internals, only what a user can run.
package chaos
