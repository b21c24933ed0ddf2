// Package harness measures replicated-log systems on one machine: it owns
// the load generator (closed-loop clients proposing to each group's
// leader), one benchmark cell run in the current process (three durable
// replicas, warm-up, measured window, CPU time and peak RSS from
// getrusage), the matrix of cells run as fresh child processes with
// alternating system order, the aggregation of repetitions into medians
// and raftkit ratios, the Markdown report, the machine description (cores,
// memory, fsync latency), and the helpers that keep child processes, ports
// and temporary directories from outliving a run.
//
// It never knows a system by name beyond the strings it is given: the
// caller passes the systems.System values (see bench/systems_list.go), and
// it never starts a replica itself outside RunCell. Failover measurement,
// which needs one process per replica, lives in package failover; this
// package only renders its results.
package harness
