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
//
// Invariant: ents[i] describes the entry at index off+i, so the mirror
// holds off+1 .. last(). ents[0] stands for the prefix the node no longer
// holds: the entry at off (its compaction point, or the index of an
// installed snapshot), of which only term and chain are known. Entries at
// or below off are held through the snapshot. A fresh log has off 0 and a
// zero sentinel (chain 0) in ents[0].
type logMirror struct {
	off  uint64
	ents []digest
}

func newLogMirror() logMirror { return logMirror{ents: make([]digest, 1, 256)} }

func (m *logMirror) last() uint64 { return m.off + uint64(len(m.ents)-1) }

// at returns the digest of entry i; off <= i <= last() (at off: term and
// chain only).
func (m *logMirror) at(i uint64) *digest { return &m.ents[i-m.off] }

func (m *logMirror) clone() logMirror {
	c := logMirror{off: m.off, ents: make([]digest, len(m.ents), cap(m.ents))}
	copy(c.ents, m.ents)
	return c
}

// write truncates the mirror at ents[0].Index and appends ents, as
// MemoryStorage.Append does. It fails if ents leave a gap, are not
// consecutive or start at or below off (a write into the compacted prefix,
// which holds only committed entries).
func (m *logMirror) write(ents []raftpb.Entry) error {
	first := ents[0].Index
	if first <= m.off || first > m.last()+1 {
		return fmt.Errorf("append at index %d to a log holding [%d, %d]", first, m.off+1, m.last())
	}
	m.ents = m.ents[:first-m.off]
	prev := m.ents[first-1-m.off].chain
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

// compact drops the entries before index to, as MemoryStorage.Compact(to-1)
// does: afterwards off is to-1. The caller checked off < to-1 <= last().
// The dead prefix of the array is released at the next reallocation.
func (m *logMirror) compact(to uint64) {
	k := to - 1 - m.off
	m.ents = m.ents[k:]
	m.off = to - 1
	m.ents[0].data = nil
}

// reset replaces the whole log by a snapshot at index whose entry has term
// and whose log prefix has chain, as MemoryStorage.ApplySnapshot does.
func (m *logMirror) reset(index, term, chain uint64) {
	m.off = index
	m.ents = append(make([]digest, 0, 256), digest{term: term, chain: chain})
}

// truncate drops the entries after last; off <= last <= last().
func (m *logMirror) truncate(last uint64) { m.ents = m.ents[:last-m.off+1] }
