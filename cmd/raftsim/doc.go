// Command raftsim is the simulated counterpart of the Counter demo: it runs
// a simulated cluster (the rafttest simulator: one goroutine, virtual clock,
// in-memory network and storage) through a short story — election,
// replication, commit and apply, the leader crashing, failover, and the old
// leader catching up — and prints what each node sees at every step.
//
// Everything is in memory and on a virtual clock: no ports, no files, and the
// same -seed always tells the same story.
package main
