package rafttest

import (
	"fmt"

	"github.com/raftkit/raftkit/raftpb"
)

// digest summarizes one log entry for the invariant checks. chain folds the
// digest of every entry before it, so two logs agree on a whole prefix
// exactly when they agree on the chain of its last entry (up to 64-bit hash
// collisions, which a run of a few thousand entries will not meet).
type digest struct {
	term  uint64
	hash  uint64 // hash of the payload
	chain uint64 // hash of (previous chain, term, type, hash)
	typ   raftpb.EntryType
	data  []byte // the payload itself, shared, for failure reports only
}

func (d *digest) sameEntry(o *digest) bool {
	return d.term == o.term && d.typ == o.typ && d.hash == o.hash
}

func (d *digest) String() string {
	return fmt.Sprintf("%d %s %q", d.term, d.typ, d.data)
}

// mix64 is the splitmix64 finalizer: a cheap bijective 64-bit mixer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashBytes is 64-bit FNV-1a.
func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func digestOf(prevChain uint64, e *raftpb.Entry) digest {
	d := digest{term: e.Term, typ: e.Type, hash: hashBytes(e.Data), data: e.Data}
	d.chain = mix64(mix64(mix64(prevChain^e.Term)^uint64(e.Type)+1) ^ d.hash)
	return d
}

// logMirror shadows one node's log as digests, indexed by log index.
// Invariant: ents[0] is a zero sentinel (chain 0) and ents[i] describes the
// entry at index i; the simulator never compacts, so the log starts at 1.
type logMirror struct {
	ents []digest
}

func newLogMirror() logMirror { return logMirror{ents: make([]digest, 1, 256)} }

func (m *logMirror) last() uint64 { return uint64(len(m.ents) - 1) }

// chainAt returns the chain hash at index i, which must be <= last().
func (m *logMirror) chainAt(i uint64) uint64 { return m.ents[i].chain }

func (m *logMirror) clone() logMirror {
	c := logMirror{ents: make([]digest, len(m.ents), cap(m.ents))}
	copy(c.ents, m.ents)
	return c
}

// write truncates the mirror at ents[0].Index and appends ents, as
// MemoryStorage.Append does. It fails if ents leave a gap or are not
// consecutive.
func (m *logMirror) write(ents []raftpb.Entry) error {
	first := ents[0].Index
	if first == 0 || first > m.last()+1 {
		return fmt.Errorf("append at index %d to a log ending at %d", first, m.last())
	}
	m.ents = m.ents[:first]
	prev := m.ents[first-1].chain
	for i := range ents {
		if ents[i].Index != first+uint64(i) {
			return fmt.Errorf("appended entries not consecutive: %d follows %d", ents[i].Index, ents[i-1].Index)
		}
		d := digestOf(prev, &ents[i])
		m.ents = append(m.ents, d)
		prev = d.chain
	}
	return nil
}
