package raftpb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// ErrCorruptConfChange is wrapped by every error ConfChange.Unmarshal
// returns; test with errors.Is. It is never modified and safe to use from any
// goroutine.
var ErrCorruptConfChange = errors.New("raftpb: corrupt configuration change")

// ConfChangeKind says how a ConfChange moves from the configuration before it
// to the one after it.
type ConfChangeKind uint8

const (
	// ConfChangeSimple sets the configuration to Voters and Learners without
	// a joint phase. The core proposes it only when the voters stay the same
	// (learners change), and for the unsafe ResetConf recovery.
	ConfChangeSimple ConfChangeKind = iota
	// ConfChangeEnterJoint enters the joint configuration whose incoming
	// voters are Voters and whose outgoing voters are the voters before it;
	// Learners become the learners.
	ConfChangeEnterJoint
	// ConfChangeLeaveJoint drops the outgoing half of a joint configuration;
	// its Voters and Learners are unused.
	ConfChangeLeaveJoint

	numConfChangeKinds
)

func (k ConfChangeKind) String() string {
	switch k {
	case ConfChangeSimple:
		return "Simple"
	case ConfChangeEnterJoint:
		return "EnterJoint"
	case ConfChangeLeaveJoint:
		return "LeaveJoint"
	}
	return fmt.Sprintf("ConfChangeKind(%d)", uint8(k))
}

// PeerAddr is a member's address. The core never interprets it; the runtime
// keeps its address book from it.
type PeerAddr struct {
	ID   uint64
	Addr string
}

// ConfChange is the payload (Entry.Data) of an EntryConfChange entry: a
// target configuration and how to reach it.
type ConfChange struct {
	Kind ConfChangeKind
	// Voters are the target configuration's voters (Simple, EnterJoint).
	Voters []uint64
	// Learners are the target configuration's learners (Simple, EnterJoint).
	Learners []uint64
	// Addrs are the addresses of the target's members, as the proposer knew
	// them.
	Addrs []PeerAddr
}

func (cc ConfChange) String() string {
	return fmt.Sprintf("%s voters=%v learners=%v", cc.Kind, cc.Voters, cc.Learners)
}

const (
	confChangeVersion = 1
	// minAddrSize is the fewest bytes an encoded PeerAddr takes: two
	// one-byte uvarints.
	minAddrSize = 2
)

// Size returns the exact length of cc's encoding.
//
// Size only reads cc: it may run concurrently with other readers of cc but
// not with writes to it.
func (cc *ConfChange) Size() int {
	n := 2 + listSize(cc.Voters) + listSize(cc.Learners) + uvarintLen(uint64(len(cc.Addrs)))
	for _, a := range cc.Addrs {
		n += uvarintLen(a.ID) + uvarintLen(uint64(len(a.Addr))) + len(a.Addr)
	}
	return n
}

// MarshalAppend appends the encoding of cc to b and returns the extended
// slice, growing b at most once.
//
// MarshalAppend only reads cc: it may run concurrently with other readers of
// cc but not with writes to it.
//
// The format, version 1, in the notation of Message.MarshalAppend (minimal
// uvarints, nothing may follow):
//
//	version   u8       always 1
//	kind      u8       ConfChangeKind, 0..2
//	voters    n uvarint, then n uvarints
//	learners  n uvarint, then n uvarints
//	addrs     n uvarint, then n times:
//	    id    uvarint
//	    len   uvarint
//	    addr  len bytes
//
// The encoding is canonical: Unmarshal accepts exactly what MarshalAppend
// produces, so a decode then an encode reproduces the input byte for byte.
func (cc *ConfChange) MarshalAppend(b []byte) []byte {
	b = slices.Grow(b, cc.Size())
	b = append(b, confChangeVersion, byte(cc.Kind))
	b = appendList(b, cc.Voters)
	b = appendList(b, cc.Learners)
	b = binary.AppendUvarint(b, uint64(len(cc.Addrs)))
	for _, a := range cc.Addrs {
		b = binary.AppendUvarint(b, a.ID)
		b = binary.AppendUvarint(b, uint64(len(a.Addr)))
		b = append(b, a.Addr...)
	}
	return b
}

// Unmarshal decodes a ConfChange encoded by MarshalAppend into cc, replacing
// all of its fields. Errors wrap ErrCorruptConfChange; on error cc is left
// unchanged. Unmarshal never panics and allocates in proportion to
// len(data) at most: every count is checked against the bytes left before
// anything is allocated. It rejects an unknown version or kind, non-minimal
// or overflowing varints and trailing bytes. Empty lists decode as nil. The
// result does not alias data.
//
// Unmarshal writes cc: it must not run concurrently with any other use of cc.
func (cc *ConfChange) Unmarshal(data []byte) error {
	d := decoder{b: data, corrupt: ErrCorruptConfChange}
	var out ConfChange
	version, err := d.byte("version")
	if err != nil {
		return err
	}
	if version != confChangeVersion {
		return d.errorf("unsupported version %d (want %d)", version, confChangeVersion)
	}
	kind, err := d.byte("kind")
	if err != nil {
		return err
	}
	if kind >= byte(numConfChangeKinds) {
		return d.errorf("unknown kind %d", kind)
	}
	out.Kind = ConfChangeKind(kind)
	if out.Voters, err = d.list("voters count", "voter"); err != nil {
		return err
	}
	if out.Learners, err = d.list("learners count", "learner"); err != nil {
		return err
	}
	n, err := d.count("addrs count", minAddrSize)
	if err != nil {
		return err
	}
	if n > 0 {
		out.Addrs = make([]PeerAddr, n)
	}
	for i := range out.Addrs {
		if out.Addrs[i], err = d.addr(); err != nil {
			return err
		}
	}
	if d.off != len(d.b) {
		return d.errorf("%d trailing bytes at offset %d", len(d.b)-d.off, d.off)
	}
	*cc = out
	return nil
}

func (d *decoder) addr() (PeerAddr, error) {
	id, err := d.uvarint("addr id")
	if err != nil {
		return PeerAddr{}, err
	}
	at := d.off
	l, err := d.uvarint("addr length")
	if err != nil {
		return PeerAddr{}, err
	}
	if left := len(d.b) - d.off; l > uint64(left) {
		return PeerAddr{}, d.errorf("addr length %d at offset %d exceeds the %d bytes left", l, at, left)
	}
	end := d.off + int(l)
	a := PeerAddr{ID: id, Addr: string(d.b[d.off:end])}
	d.off = end
	return a, nil
}
