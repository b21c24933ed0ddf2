package core

import (
	"errors"

	"github.com/raftkit/raftkit/raftpb"
)

// ErrProposalDropped: STUB FILE, being replaced by the real implementation.
var ErrProposalDropped = errors.New("core: proposal dropped")

// Raft is STUB.
type Raft struct{}

func New(cfg Config) (*Raft, error)                                    { panic("stub") }
func (r *Raft) Tick()                                                  { panic("stub") }
func (r *Raft) Step(m raftpb.Message) error                            { panic("stub") }
func (r *Raft) Propose(data ...[]byte) (first, term uint64, err error) { panic("stub") }
func (r *Raft) Campaign() error                                        { panic("stub") }
func (r *Raft) HasReady() bool                                         { panic("stub") }
func (r *Raft) Ready() Ready                                           { panic("stub") }
func (r *Raft) Advance(rd Ready)                                       { panic("stub") }
func (r *Raft) AppliedTo(index uint64)                                 { panic("stub") }
func (r *Raft) Status() Status                                         { panic("stub") }
func (r *Raft) Lead() uint64                                           { panic("stub") }
func (r *Raft) Role() Role                                             { panic("stub") }
func (r *Raft) Term() uint64                                           { panic("stub") }
func (r *Raft) ReportUnreachable(id uint64)                            { panic("stub") }
func (r *Raft) ReportSnapshot(id uint64, ok bool)                      { panic("stub") }
func (r *Raft) TransferLeadership(to uint64) error                     { panic("stub") }
