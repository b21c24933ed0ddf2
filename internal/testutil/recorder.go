package testutil

import (
	"slices"
	"sync"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport"
)

var _ transport.Handler = (*Recorder)(nil)

// Delivered is one message a Recorder received.
type Delivered struct {
	Group uint64
	Msg   raftpb.Message
}

// Recorder is a transport.Handler that keeps what it receives. Its zero value
// accepts everything; Reject, when set, decides which messages to refuse: a
// message of a group for which it returns an error is not recorded, and the
// error is returned to the transport. Set Reject before handing the Recorder
// to a transport. It is safe for concurrent use.
type Recorder struct {
	Reject func(group uint64) error

	mu  sync.Mutex
	got []Delivered
}

// HandleRaft records a copy of m under group unless Reject refuses it.
func (r *Recorder) HandleRaft(group uint64, m *raftpb.Message) error {
	if r.Reject != nil {
		if err := r.Reject(group); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.got = append(r.got, Delivered{group, *m})
	r.mu.Unlock()
	return nil
}

// Count returns how many messages have been recorded.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// All returns the recorded messages in the order they arrived.
func (r *Recorder) All() []Delivered {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// Has reports whether a message of group with the given index was recorded.
func (r *Recorder) Has(group, index uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.got, func(d Delivered) bool { return d.Group == group && d.Msg.Index == index })
}
