package raftpb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// ErrCorruptMessage is wrapped by every error Unmarshal returns for a Message;
// test with errors.Is. The wrapping error says what was wrong and where. Like
// all the package's sentinels it is never modified, so it is safe to use from
// any goroutine.
var ErrCorruptMessage = errors.New("raftpb: corrupt message")

// ErrCorruptHardState is wrapped by every error Unmarshal returns for a
// HardState; test with errors.Is. It is never modified and safe to use from
// any goroutine.
var ErrCorruptHardState = errors.New("raftpb: corrupt hard state")

// HardStateSize is the exact length of an encoded HardState: Term, Vote and
// Commit as little-endian uint64s, with no version byte.
const HardStateSize = 24

const (
	messageVersion = 1

	flagReject   = 1 << 0
	flagTransfer = 1 << 1
	flagSnapshot = 1 << 2
	flagContext  = 1 << 3
	knownFlags   = flagReject | flagTransfer | flagSnapshot | flagContext

	// messageHeaderSize is version, type and flags.
	messageHeaderSize = 3
	// minEntrySize is the fewest bytes an encoded entry takes: three
	// one-byte uvarints and the type byte.
	minEntrySize = 4
)

// uvarintLen is the length of binary.AppendUvarint(nil, x).
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func listSize(l []uint64) int {
	n := uvarintLen(uint64(len(l)))
	for _, v := range l {
		n += uvarintLen(v)
	}
	return n
}

// Size returns the exact length of m's encoding, so that callers can presize
// the buffer given to MarshalAppend.
//
// Size only reads m: it may run concurrently with other readers of m (Size,
// MarshalAppend) but not with any write to m, its Entries or its Snapshot.
func (m *Message) Size() int {
	n := messageHeaderSize + uvarintLen(m.From) + uvarintLen(m.To) + uvarintLen(m.Term) +
		uvarintLen(m.LogTerm) + uvarintLen(m.Index) + uvarintLen(m.Commit) +
		uvarintLen(m.RejectHint) + uvarintLen(uint64(len(m.Entries)))
	if m.Context != 0 {
		n += uvarintLen(m.Context)
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		n += uvarintLen(e.Term) + uvarintLen(e.Index) + 1 + uvarintLen(uint64(len(e.Data))) + len(e.Data)
	}
	if s := m.Snapshot; s != nil {
		n += uvarintLen(s.Index) + uvarintLen(s.Term) + listSize(s.ConfState.Voters) +
			listSize(s.ConfState.VotersOutgoing) + listSize(s.ConfState.Learners)
	}
	return n
}

func appendList(b []byte, l []uint64) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, v := range l {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

// MarshalAppend appends the encoding of m to b and returns the extended slice. It grows b at most once, to fit Size() more
// bytes, and allocates nothing when cap(b)-len(b) >= m.Size(). Entry data is
// copied, so the result does not alias m.
//
// MarshalAppend only reads m: it may run concurrently with other readers of m
// but not with any write to m, its Entries or its Snapshot.
//
// The wire format, version 1: "u8" is one byte; "uvarint" is the
// unsigned LEB128 varint of encoding/binary (at most 10 bytes), which must be
// minimal: its last byte is nonzero unless the varint is the single byte 0.
//
//	version     u8       always 1
//	type        u8       MessageType, any value (the core validates types)
//	flags       u8       bit 0 Reject, bit 1 Transfer, bit 2 Snapshot present,
//	                     bit 3 Context present; the other bits must be zero
//	from        uvarint
//	to          uvarint
//	term        uvarint
//	logTerm     uvarint
//	index       uvarint
//	commit      uvarint
//	rejectHint  uvarint
//	if flags has bit 3:
//	    context uvarint  non-zero (a zero Context is encoded by leaving
//	                     bit 3 clear)
//	nEntries    uvarint
//	nEntries times:
//	    term    uvarint
//	    index   uvarint
//	    type    u8       EntryType, any value
//	    len     uvarint
//	    data    len bytes
//	if flags has bit 2 (SnapshotMeta):
//	    index   uvarint
//	    term    uvarint
//	    three lists, in order Voters, VotersOutgoing, Learners, each:
//	        n   uvarint
//	        n uvarints
//
// Nothing may follow the message. The encoding is canonical: Unmarshal accepts
// exactly the byte strings MarshalAppend can produce, so decoding and then
// encoding again reproduces the input byte for byte. A nil and an empty slice
// encode alike and decode as nil.
func (m *Message) MarshalAppend(b []byte) []byte {
	b = slices.Grow(b, m.Size())
	var flags byte
	if m.Reject {
		flags |= flagReject
	}
	if m.Transfer {
		flags |= flagTransfer
	}
	if m.Snapshot != nil {
		flags |= flagSnapshot
	}
	if m.Context != 0 {
		flags |= flagContext
	}
	b = append(b, messageVersion, byte(m.Type), flags)
	b = binary.AppendUvarint(b, m.From)
	b = binary.AppendUvarint(b, m.To)
	b = binary.AppendUvarint(b, m.Term)
	b = binary.AppendUvarint(b, m.LogTerm)
	b = binary.AppendUvarint(b, m.Index)
	b = binary.AppendUvarint(b, m.Commit)
	b = binary.AppendUvarint(b, m.RejectHint)
	if m.Context != 0 {
		b = binary.AppendUvarint(b, m.Context)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		b = binary.AppendUvarint(b, e.Term)
		b = binary.AppendUvarint(b, e.Index)
		b = append(b, byte(e.Type))
		b = binary.AppendUvarint(b, uint64(len(e.Data)))
		b = append(b, e.Data...)
	}
	if s := m.Snapshot; s != nil {
		b = binary.AppendUvarint(b, s.Index)
		b = binary.AppendUvarint(b, s.Term)
		b = appendList(b, s.ConfState.Voters)
		b = appendList(b, s.ConfState.VotersOutgoing)
		b = appendList(b, s.ConfState.Learners)
	}
	return b
}

// decoder reads a Message or ConfChange encoding front to back; its errors
// wrap corrupt (ErrCorruptMessage when nil).
type decoder struct {
	b       []byte
	off     int
	corrupt error
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) errorf(format string, args ...any) error {
	corrupt := d.corrupt
	if corrupt == nil {
		corrupt = ErrCorruptMessage
	}
	return fmt.Errorf("%w: "+format, append([]any{corrupt}, args...)...)
}

func (d *decoder) byte(what string) (byte, error) {
	if d.off >= len(d.b) {
		return 0, d.errorf("%s: truncated at offset %d", what, d.off)
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

func (d *decoder) uvarint(what string) (uint64, error) {
	v, n := binary.Uvarint(d.b[d.off:])
	switch {
	case n == 0:
		return 0, d.errorf("%s: truncated varint at offset %d", what, d.off)
	case n < 0:
		return 0, d.errorf("%s: varint overflows 64 bits at offset %d", what, d.off)
	case n > 1 && d.b[d.off+n-1] == 0:
		return 0, d.errorf("%s: non-minimal varint at offset %d", what, d.off)
	}
	d.off += n
	return v, nil
}

// count reads an element count and rejects it, before anything is allocated,
// unless n elements of at least minSize bytes each fit in the remaining input.
func (d *decoder) count(what string, minSize int) (int, error) {
	at := d.off
	n, err := d.uvarint(what)
	if err != nil {
		return 0, err
	}
	if n > uint64(d.remaining()/minSize) {
		return 0, d.errorf("%s %d at offset %d exceeds the %d bytes left", what, n, at, d.remaining())
	}
	return int(n), nil
}

func (d *decoder) list(countWhat, elemWhat string) ([]uint64, error) {
	n, err := d.count(countWhat, 1)
	if err != nil || n == 0 {
		return nil, err
	}
	l := make([]uint64, n)
	for i := range l {
		if l[i], err = d.uvarint(elemWhat); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Unmarshal decodes a Message encoded by MarshalAppend into m, replacing all
// of m's fields. Errors wrap ErrCorruptMessage and say what was wrong; on error
// m is left unchanged. Unmarshal never panics, whatever data holds. It rejects
// a version other than 1, unknown flag bits, non-minimal or overflowing
// varints, a zero Context flagged as present, counts or lengths that cannot
// fit in the remaining input (checked before allocating, so memory use stays
// proportional to len(data)), and trailing bytes. Unknown message and entry type values are kept as they are;
// validating them is the core's job.
//
// The decoded Entry.Data slices alias data (with their capacity clipped, so
// appending to one never overwrites its neighbour): the caller must not modify
// data while the message is in use, and must copy Data that should outlive the
// buffer. Empty Data decodes as nil, as do empty Entries and ConfState lists.
//
// Unmarshal writes m and reads data: it must not run concurrently with any
// other use of m, nor with writes to data.
func (m *Message) Unmarshal(data []byte) error {
	d := decoder{b: data}
	var out Message

	version, err := d.byte("version")
	if err != nil {
		return err
	}
	if version != messageVersion {
		return d.errorf("unsupported version %d (want %d)", version, messageVersion)
	}
	typ, err := d.byte("type")
	if err != nil {
		return err
	}
	out.Type = MessageType(typ)
	flags, err := d.byte("flags")
	if err != nil {
		return err
	}
	if flags&^knownFlags != 0 {
		return d.errorf("unknown flag bits %#x", flags&^knownFlags)
	}
	out.Reject = flags&flagReject != 0
	out.Transfer = flags&flagTransfer != 0

	if out.From, err = d.uvarint("from"); err != nil {
		return err
	}
	if out.To, err = d.uvarint("to"); err != nil {
		return err
	}
	if out.Term, err = d.uvarint("term"); err != nil {
		return err
	}
	if out.LogTerm, err = d.uvarint("log term"); err != nil {
		return err
	}
	if out.Index, err = d.uvarint("index"); err != nil {
		return err
	}
	if out.Commit, err = d.uvarint("commit"); err != nil {
		return err
	}
	if out.RejectHint, err = d.uvarint("reject hint"); err != nil {
		return err
	}
	if flags&flagContext != 0 {
		at := d.off
		if out.Context, err = d.uvarint("context"); err != nil {
			return err
		}
		if out.Context == 0 {
			// Canonical form: a zero Context has no field at all.
			return d.errorf("zero context at offset %d with the context flag set", at)
		}
	}

	n, err := d.count("entry count", minEntrySize)
	if err != nil {
		return err
	}
	if n > 0 {
		out.Entries = make([]Entry, n)
	}
	for i := range out.Entries {
		e := &out.Entries[i]
		if e.Term, err = d.uvarint("entry term"); err != nil {
			return err
		}
		if e.Index, err = d.uvarint("entry index"); err != nil {
			return err
		}
		typ, err := d.byte("entry type")
		if err != nil {
			return err
		}
		e.Type = EntryType(typ)
		at := d.off
		l, err := d.uvarint("entry data length")
		if err != nil {
			return err
		}
		if l > uint64(d.remaining()) {
			return d.errorf("entry %d data length %d at offset %d exceeds the %d bytes left", i, l, at, d.remaining())
		}
		if l > 0 {
			end := d.off + int(l)
			e.Data = data[d.off:end:end]
			d.off = end
		}
	}

	if flags&flagSnapshot != 0 {
		s := new(SnapshotMeta)
		if s.Index, err = d.uvarint("snapshot index"); err != nil {
			return err
		}
		if s.Term, err = d.uvarint("snapshot term"); err != nil {
			return err
		}
		if s.ConfState.Voters, err = d.list("voters count", "voter"); err != nil {
			return err
		}
		if s.ConfState.VotersOutgoing, err = d.list("outgoing voters count", "outgoing voter"); err != nil {
			return err
		}
		if s.ConfState.Learners, err = d.list("learners count", "learner"); err != nil {
			return err
		}
		out.Snapshot = s
	}

	if d.remaining() != 0 {
		return d.errorf("%d trailing bytes at offset %d", d.remaining(), d.off)
	}
	*m = out
	return nil
}

// MarshalAppend appends the HardStateSize-byte encoding of hs (Term, Vote,
// Commit, little-endian) to b and returns the extended slice. It allocates
// nothing when b has room for HardStateSize more bytes.
//
// MarshalAppend only reads hs: it may run concurrently with other readers of
// hs but not with writes to it.
func (hs *HardState) MarshalAppend(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, hs.Term)
	b = binary.LittleEndian.AppendUint64(b, hs.Vote)
	return binary.LittleEndian.AppendUint64(b, hs.Commit)
}

// Unmarshal decodes a HardState encoded by MarshalAppend into hs. data must
// be exactly HardStateSize bytes; otherwise the error wraps
// ErrCorruptHardState and hs is left unchanged. Unmarshal never panics and
// does not retain data.
//
// Unmarshal writes hs: it must not run concurrently with any other use of hs.
func (hs *HardState) Unmarshal(data []byte) error {
	if len(data) != HardStateSize {
		return fmt.Errorf("%w: length %d, want %d", ErrCorruptHardState, len(data), HardStateSize)
	}
	*hs = HardState{
		Term:   binary.LittleEndian.Uint64(data[0:8]),
		Vote:   binary.LittleEndian.Uint64(data[8:16]),
		Commit: binary.LittleEndian.Uint64(data[16:24]),
	}
	return nil
}
