package logengine

// This file holds the on-disk encoding: segment headers, record framing and
// the payload of each record type. doc.go describes the format in prose.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"

	"github.com/raftkit/raftkit/raftpb"
)

const (
	// segMagic opens every segment file the engine writes (format 2:
	// record checksums salted with the segment's seq, a zero length field
	// after every round).
	segMagic = "RKLOG002"
	// segMagicV1 opens segments of format 1 (unsalted checksums, no end
	// marker); the engine reads them and appends to an active one, but
	// never creates one.
	segMagicV1 = "RKLOG001"
	// headerSize is the size of a segment header: magic, seq u64, CRC32C
	// of the first 16 bytes u32, 4 reserved zero bytes.
	headerSize = 24
	// frameSize is the framing in front of a record's type byte: length u32
	// and CRC32C u32.
	frameSize = 8
	// roundRecSize is the whole size of a round record: frame, type, the
	// round's length u32.
	roundRecSize = frameSize + 1 + 4
	// maxRecordLen bounds the length field of a record (type + payload).
	maxRecordLen = 1 << 30
	// maxSegmentSize bounds Options.SegmentSize so that offsets fit in u32
	// even when an oversized round follows a full segment.
	maxSegmentSize = 1 << 31
	// maxBatchBytes bounds Options.MaxWriteBatchBytes and the encoded size
	// of one request.
	maxBatchBytes = 1 << 30
)

// Record types.
const (
	recEntries  byte = 1 // appended entries; truncates the group's suffix
	recTruncate byte = 2 // prefix truncation / group checkpoint
	recReset    byte = 3 // whole-log reset after a snapshot
	recRewrite  byte = 4 // GC copy of live entries; overwrites in place
	recRound    byte = 5 // opens a group-commit round; carries its length
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func segmentCRC(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

// saltOf is the value XORed into every record checksum of segment seq in
// format 2. A recycled file keeps the records of its previous life past the
// new data; salting makes each of them fail verification under the new
// seq, whatever bytes they hold. Multiplying by an odd constant is a
// bijection on 32 bits, so two seqs less than 2^32 apart never share a salt,
// and only seq 2^32·k salts to 0 (format 1's "no salt").
func saltOf(seq uint64) uint32 { return uint32(seq) * 0x9E3779B1 }

// recordCRC is the checksum field of a record with the given body in a
// segment with the given salt.
func recordCRC(body []byte, salt uint32) uint32 { return segmentCRC(body) ^ salt }

// appendHeader appends the header of segment seq to b.
func appendHeader(b []byte, seq uint64) []byte {
	start := len(b)
	b = append(b, segMagic...)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint32(b, segmentCRC(b[start:]))
	return append(b, 0, 0, 0, 0)
}

// checkHeader verifies that b starts with the header of segment seq and
// returns the salt of its records (0 for format 1).
func checkHeader(b []byte, seq uint64) (salt uint32, err error) {
	if len(b) < headerSize {
		return 0, fmt.Errorf("short header (%d bytes)", len(b))
	}
	switch string(b[:8]) {
	case segMagic:
		salt = saltOf(seq)
	case segMagicV1:
	default:
		return 0, errors.New("bad magic")
	}
	if got := binary.LittleEndian.Uint32(b[16:]); got != segmentCRC(b[:16]) {
		return 0, errors.New("header checksum mismatch")
	}
	if got := binary.LittleEndian.Uint64(b[8:]); got != seq {
		return 0, fmt.Errorf("header names segment %d", got)
	}
	return salt, nil
}

// beginRecord appends the frame and type byte of a record whose payload the
// caller appends next; finishRecord fills in the frame.
func beginRecord(b []byte, typ byte) ([]byte, int) {
	start := len(b)
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0, typ), start
}

// finishRecord fills in the frame with the unsalted checksum; saltRecord
// adds the salt once the round's segment is known.
func finishRecord(b []byte, start int) {
	body := b[start+frameSize:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], segmentCRC(body))
}

// saltRecord XORs salt into the checksum of the record at b[start:].
func saltRecord(b []byte, start int, salt uint32) {
	crc := b[start+4 : start+8]
	binary.LittleEndian.PutUint32(crc, binary.LittleEndian.Uint32(crc)^salt)
}

// appendRoundPlaceholder appends a round record to be completed by
// finishRound once the round's length is known.
func appendRoundPlaceholder(b []byte) []byte {
	return append(b, make([]byte, roundRecSize)...)
}

// finishRound completes the round record at the start of b, which holds the
// whole round.
func finishRound(b []byte) {
	b[frameSize] = recRound
	binary.LittleEndian.PutUint32(b[frameSize+1:], uint32(len(b)))
	finishRecord(b[:roundRecSize], 0)
}

// uvarintLen is the length of the uvarint encoding of v.
func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// entryEncLen is the size of one entry's encoding inside an entries record.
func entryEncLen(term uint64, dataLen uint32) uint32 {
	return uint32(uvarintLen(term)+1+uvarintLen(uint64(dataLen))) + dataLen
}

// appendEntry appends the encoding of e (term, type, data length, data).
func appendEntry(b []byte, e *raftpb.Entry) []byte {
	b = binary.AppendUvarint(b, e.Term)
	b = append(b, byte(e.Type))
	b = binary.AppendUvarint(b, uint64(len(e.Data)))
	return append(b, e.Data...)
}

// record is one decoded record: its type and payload (type byte excluded).
type record struct {
	typ     byte
	payload []byte
}

// Results of readRecord.
const (
	recOK  = iota
	recEnd // a zero length field or the end of the data: no more records
	recBad // torn, truncated or corrupt
)

// readRecord decodes the record at data[pos:]. On recOK n is the record's
// whole size; on recBad reason says why.
func readRecord(data []byte, pos int, salt uint32) (r record, n int, status int, reason string) {
	rest := data[pos:]
	if len(rest) == 0 {
		return r, 0, recEnd, ""
	}
	if len(rest) < frameSize {
		if allZero(rest) {
			return r, 0, recEnd, ""
		}
		return r, 0, recBad, "short record frame"
	}
	l := binary.LittleEndian.Uint32(rest)
	if l == 0 {
		return r, 0, recEnd, ""
	}
	if l > maxRecordLen || uint64(l) > uint64(len(rest)-frameSize) {
		return r, 0, recBad, fmt.Sprintf("record length %d past the end of the data", l)
	}
	body := rest[frameSize : frameSize+int(l)]
	if binary.LittleEndian.Uint32(rest[4:]) != recordCRC(body, salt) {
		return r, 0, recBad, "record checksum mismatch"
	}
	return record{typ: body[0], payload: body[1:]}, frameSize + int(l), recOK, ""
}

// allZero reports whether b holds only zeros. Recovery checks the
// unwritten rest of every segment (tens of MiB), and counting a single
// byte is vectorised.
func allZero(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }

// isRoundRecordAt reports whether a valid round record whose round lies
// within data starts at data[o:].
func isRoundRecordAt(data []byte, o int, salt uint32) bool {
	if o+roundRecSize > len(data) || binary.LittleEndian.Uint32(data[o:]) != 5 || data[o+frameSize] != recRound {
		return false
	}
	if binary.LittleEndian.Uint32(data[o+4:]) != recordCRC(data[o+frameSize:o+roundRecSize], salt) {
		return false
	}
	l := binary.LittleEndian.Uint32(data[o+frameSize+1:])
	return l >= roundRecSize && uint64(o)+uint64(l) <= uint64(len(data))
}

// roundAfter reports whether a valid round record starts anywhere in
// data[from:] under salt: evidence that committed data follows a bad
// record. Records a recycled file kept from its previous life never count:
// their checksums carry another salt.
func roundAfter(data []byte, from int, salt uint32) bool {
	for o := max(from, 0); o+roundRecSize <= len(data); o++ {
		if data[o] == 5 && isRoundRecordAt(data, o, salt) {
			return true
		}
	}
	return false
}

// decoder reads uvarints from a payload, remembering the first error.
type decoder struct {
	b   []byte
	pos int
	bad bool
}

func (d *decoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.pos:])
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.pos += n
	return v
}

func (d *decoder) u32() uint32 {
	if d.bad || len(d.b)-d.pos < 4 {
		d.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b[d.pos:])
	d.pos += 4
	return v
}

func (d *decoder) done() bool { return !d.bad && d.pos == len(d.b) }

// truncRec is a decoded truncate record: afterwards the group's log is
// [first, last] and the term of first-1 is prevTerm.
type truncRec struct{ group, first, prevTerm, last uint64 }

func appendTruncate(b []byte, r truncRec) []byte {
	b = binary.AppendUvarint(b, r.group)
	b = binary.AppendUvarint(b, r.first)
	b = binary.AppendUvarint(b, r.prevTerm)
	return binary.AppendUvarint(b, r.last)
}

func decodeTruncate(p []byte) (truncRec, error) {
	d := decoder{b: p}
	r := truncRec{group: d.uvarint(), first: d.uvarint(), prevTerm: d.uvarint(), last: d.uvarint()}
	if !d.done() {
		return r, errors.New("malformed truncate record")
	}
	if r.first == 0 || r.last < r.first-1 {
		return r, fmt.Errorf("truncate record with bounds [%d, %d]", r.first, r.last)
	}
	return r, nil
}

// resetRec is a decoded reset record: the log restarts after (index, term).
type resetRec struct{ group, index, term uint64 }

func appendReset(b []byte, r resetRec) []byte {
	b = binary.AppendUvarint(b, r.group)
	b = binary.AppendUvarint(b, r.index)
	return binary.AppendUvarint(b, r.term)
}

func decodeReset(p []byte) (resetRec, error) {
	d := decoder{b: p}
	r := resetRec{group: d.uvarint(), index: d.uvarint(), term: d.uvarint()}
	if !d.done() {
		return r, errors.New("malformed reset record")
	}
	if r.index == math.MaxUint64 {
		return r, errors.New("reset record index overflows")
	}
	return r, nil
}

// entriesHeader is the head of an entries or rewrite record's payload.
type entriesHeader struct{ group, first, count uint64 }

func appendEntriesHeader(b []byte, h entriesHeader) []byte {
	b = binary.AppendUvarint(b, h.group)
	b = binary.AppendUvarint(b, h.first)
	return binary.AppendUvarint(b, h.count)
}

// entryIter walks the entries of an entries or rewrite payload, validating
// each; it never reads out of bounds.
type entryIter struct {
	entriesHeader
	d    decoder
	left uint64
}

// newEntryIter decodes the payload's head.
func newEntryIter(p []byte) (entryIter, error) {
	it := entryIter{d: decoder{b: p}}
	it.group, it.first, it.count = it.d.uvarint(), it.d.uvarint(), it.d.uvarint()
	if it.d.bad {
		return it, errors.New("malformed entries record")
	}
	if it.count == 0 || it.first == 0 || it.first > math.MaxUint64-it.count {
		return it, fmt.Errorf("entries record with first %d count %d", it.first, it.count)
	}
	// Each entry takes at least 3 bytes.
	if it.count > uint64(len(p)-it.d.pos)/3 {
		return it, fmt.Errorf("entries record claims %d entries in %d bytes", it.count, len(p)-it.d.pos)
	}
	it.left = it.count
	return it, nil
}

// next returns the next entry's term, type, the position of its encoding in
// the payload, and its data length. ok is false at the end; then err says
// whether the payload was well formed.
func (it *entryIter) next() (term uint64, typ byte, encOff int, dataLen uint32, ok bool, err error) {
	if it.left == 0 {
		if it.d.pos != len(it.d.b) {
			return 0, 0, 0, 0, false, errors.New("trailing bytes in entries record")
		}
		return 0, 0, 0, 0, false, nil
	}
	encOff = it.d.pos
	term = it.d.uvarint()
	if it.d.bad || it.d.pos >= len(it.d.b) {
		return 0, 0, 0, 0, false, errors.New("malformed entry")
	}
	typ = it.d.b[it.d.pos]
	it.d.pos++
	l := it.d.uvarint()
	if it.d.bad || l > uint64(len(it.d.b)-it.d.pos) {
		return 0, 0, 0, 0, false, errors.New("malformed entry data")
	}
	it.d.pos += int(l)
	it.left--
	return term, typ, encOff, uint32(l), true, nil
}

// decodeEntryAt decodes one entry encoding from b, checking it against the
// index's expectations. The returned Data aliases b.
func decodeEntryAt(b []byte, wantTerm uint64, wantLen uint32) (raftpb.Entry, error) {
	d := decoder{b: b}
	term := d.uvarint()
	if d.bad || d.pos >= len(b) {
		return raftpb.Entry{}, errors.New("malformed entry")
	}
	typ := b[d.pos]
	d.pos++
	l := d.uvarint()
	if d.bad || term != wantTerm || l != uint64(wantLen) || uint64(len(b)-d.pos) != l {
		return raftpb.Entry{}, errors.New("entry does not match the index")
	}
	e := raftpb.Entry{Term: term, Type: raftpb.EntryType(typ)}
	if l > 0 {
		e.Data = b[d.pos : d.pos+int(l) : d.pos+int(l)]
	}
	return e, nil
}
