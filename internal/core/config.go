package core

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/raftkit/raftkit/storage"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxInflightMsgs = 256
	DefaultMaxBatchEntries = 1024
	DefaultMaxBatchBytes   = 512 << 10
	DefaultMaxApplyBytes   = 4 << 20
)

// Rand is the random source the core draws election timeouts from. Both
// *math/rand/v2.Rand and *math/rand.Rand satisfy it. The core never uses a
// global random source, so a seeded Rand makes a run reproducible.
type Rand interface {
	IntN(n int) int
}

// Config parameterizes one Raft core. Zero values select the documented
// defaults except where a field says it is required.
type Config struct {
	// ID is this node's identity in the group; required, non-zero.
	ID uint64
	// ElectionTick is T, the election timeout in ticks. A follower that hears
	// no leader for a randomized timeout in [T, 2T) starts an election; a
	// leader that hears from no quorum for T ticks steps down. Required, > 1.
	ElectionTick int
	// HeartbeatTick is the leader's heartbeat interval in ticks; zero means
	// ElectionTick/10 (at least 1). Must be < ElectionTick.
	HeartbeatTick int
	// Storage is the durable log the core reads; required.
	Storage storage.LogReader
	// Applied is the index the state machine has already applied on restart
	// (for instance the index of a loaded snapshot). Committed entries are
	// handed out after it.
	Applied uint64
	// Rand draws randomized election timeouts; required.
	Rand Rand

	// MaxInflightMsgs bounds the AppendEntries a leader keeps outstanding per
	// follower in Replicate state (the pipeline window). Default 256.
	MaxInflightMsgs int
	// MaxInflightBytes bounds the payload bytes outstanding per follower;
	// zero means no byte bound.
	MaxInflightBytes uint64
	// MaxBatchEntries and MaxBatchBytes bound one AppendEntries. Defaults 1024
	// entries and 512 KiB; a single larger entry still goes alone.
	MaxBatchEntries int
	MaxBatchBytes   uint64
	// MaxApplyBytes bounds the committed entries handed out by one Ready.
	// Default 4 MiB; at least one entry always goes.
	MaxApplyBytes uint64
	// MaxApplyingBytes bounds the payload of committed entries handed out
	// and not yet reported applied with AppliedTo: the back-pressure that
	// keeps a slow state machine from queueing the log in memory, on
	// followers as on the leader. A batch is handed out while the bound is
	// not reached, so it may be exceeded by at most one entry. Zero:
	// unbounded.
	MaxApplyingBytes uint64
	// MaxUncommittedBytes bounds the payload a leader accepts beyond its
	// commit index; proposals past it fail with ErrProposalDropped so that
	// slow followers cannot grow leader memory without bound. Zero: unbounded.
	MaxUncommittedBytes uint64

	// DisablePreVote turns off the pre-vote phase. Pre-vote is on by default:
	// it stops a node that rejoins from a partition from deposing a healthy
	// leader by bumping terms.
	DisablePreVote bool
	// DisableCheckQuorum turns off leader step-down when no quorum has been
	// heard from within an election timeout. On by default.
	DisableCheckQuorum bool
	// LeaseTicks is how long, in ticks, a leader's lease lasts from the tick
	// at which it sent a heartbeat round that a quorum acknowledged; lease
	// reads (ReadIndex with lease) are answered without a round while it
	// lasts. Zero means 9/10 of ElectionTick (rounded down, at least 1); it
	// must be below ElectionTick. The margin ElectionTick-LeaseTicks is
	// what clock-rate drift between nodes may consume; see ReadIndex. With
	// DisableCheckQuorum no lease is ever used.
	LeaseTicks int

	// Logger receives protocol events; nil discards them.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.ID == 0 {
		return errors.New("core: config ID must be non-zero")
	}
	if c.ElectionTick <= 1 {
		return fmt.Errorf("core: ElectionTick %d must be > 1", c.ElectionTick)
	}
	if c.HeartbeatTick == 0 {
		c.HeartbeatTick = max(c.ElectionTick/10, 1)
	}
	if c.HeartbeatTick < 0 || c.HeartbeatTick >= c.ElectionTick {
		return fmt.Errorf("core: HeartbeatTick %d must be in [1, ElectionTick)", c.HeartbeatTick)
	}
	if c.LeaseTicks == 0 {
		c.LeaseTicks = max(c.ElectionTick*9/10, 1)
	}
	if c.LeaseTicks < 0 || c.LeaseTicks >= c.ElectionTick {
		return fmt.Errorf("core: LeaseTicks %d must be in [1, ElectionTick)", c.LeaseTicks)
	}
	if c.Storage == nil {
		return errors.New("core: config Storage is required")
	}
	if c.Rand == nil {
		return errors.New("core: config Rand is required")
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = DefaultMaxInflightMsgs
	}
	if c.MaxInflightMsgs < 0 {
		return fmt.Errorf("core: MaxInflightMsgs %d must be positive", c.MaxInflightMsgs)
	}
	if c.MaxBatchEntries == 0 {
		c.MaxBatchEntries = DefaultMaxBatchEntries
	}
	if c.MaxBatchEntries < 0 {
		return fmt.Errorf("core: MaxBatchEntries %d must be positive", c.MaxBatchEntries)
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.MaxApplyBytes == 0 {
		c.MaxApplyBytes = DefaultMaxApplyBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
