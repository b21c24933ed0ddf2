// Package failover measures how long a three-replica cluster cannot take
// writes after its leader is SIGKILLed: the time from the kill to the
// first successful write on a survivor. It owns both ends: Serve runs one
// replica as its own process with a tiny HTTP control protocol on
// loopback (GET /leader, POST /write), and Measure starts three such
// processes per repetition, finds and kills the leader, and times the
// writes.
//
// It never measures throughput or latency under load (package harness
// does), never shares a process between replicas (a SIGKILL must take
// exactly one replica down), and never leaves a replica process or data
// directory behind: every repetition kills and reaps its processes and
// removes its directories, on success, on error and on cancellation.
package failover
