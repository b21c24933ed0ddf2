package counter

import (
	"encoding/binary"
	"fmt"

	"github.com/raftkit/raftkit"
)

// Service names the counter serves on the raft port.
const (
	ServiceIncrement = "counter.incr"
	ServiceGet       = "counter.get"
)

// DefaultGroup is the group name the command uses unless told otherwise.
const DefaultGroup = "counter"

type op uint8

const (
	opIncrement op = 1
	// opGet entries are no longer written (gets use ReadIndex) but logs
	// written by earlier versions hold them, so they still apply (as a
	// no-op returning the value).
	opGet op = 2
)

// commandSize is the fixed size of a command in the log: an opcode, seven
// reserved bytes (zero), and a big-endian int64 delta.
const commandSize = 16

func encodeCommand(o op, delta int64) []byte {
	b := make([]byte, commandSize)
	b[0] = byte(o)
	binary.BigEndian.PutUint64(b[8:], uint64(delta))
	return b
}

func decodeCommand(b []byte) (op, int64, error) {
	if len(b) != commandSize {
		return 0, 0, fmt.Errorf("counter: command of %d bytes, want %d", len(b), commandSize)
	}
	o := op(b[0])
	if o != opIncrement && o != opGet {
		return 0, 0, fmt.Errorf("counter: unknown opcode %d", b[0])
	}
	return o, int64(binary.BigEndian.Uint64(b[8:])), nil
}

// encodeValue and decodeValue carry int64s in requests and responses.
func encodeValue(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func decodeValue(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("counter: value of %d bytes, want 8", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// encodeReadMode is a get request: one byte naming the read mode.
func encodeReadMode(m raftkit.ReadMode) []byte { return []byte{byte(m)} }

// decodeReadMode decodes a get request; an empty one asks for ReadSafe.
func decodeReadMode(b []byte) (raftkit.ReadMode, error) {
	switch {
	case len(b) == 0:
		return raftkit.ReadSafe, nil
	case len(b) == 1 && raftkit.ReadMode(b[0]) <= raftkit.ReadStale:
		return raftkit.ReadMode(b[0]), nil
	}
	return 0, fmt.Errorf("counter: bad get request % x: want one byte, a read mode 0-2", b)
}
