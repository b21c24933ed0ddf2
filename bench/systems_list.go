package main

import (
	"github.com/raftkit/raftkit/bench/systems"
	"github.com/raftkit/raftkit/bench/systems/baseline"
	"github.com/raftkit/raftkit/bench/systems/dragonboat"
	"github.com/raftkit/raftkit/bench/systems/etcd"
	"github.com/raftkit/raftkit/bench/systems/hashicorp"
	"github.com/raftkit/raftkit/bench/systems/raftkit"
)

// registered lists every system the harness can run, in the tables'
// column order (raftkit first: every ratio is raftkit ÷ another column).
// Add a driver here once its package under systems/ builds.
var registered = []systems.System{
	raftkit.System{},
	baseline.System{},
	hashicorp.System{},
	etcd.System{},
	dragonboat.System{},
}
