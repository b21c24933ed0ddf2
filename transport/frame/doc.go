// Package frame is the wire format of raftkit's TCP transport: how raft
// messages, application requests and their responses are cut into
// checksummed frames on a byte stream.
//
// Every frame is a 17-byte header followed by a payload:
//
//	type    u8      Hello=1, Raft=2, Request=3, Response=4
//	group   u64 BE  the raft group the frame is about (0 for Hello)
//	length  u32 BE  payload length in bytes
//	crc     u32 BE  CRC-32C (Castagnoli) of the payload
//	payload length bytes
//
// The payloads ("uvarint" is encoding/binary's, and must be minimal;
// "string" is a uvarint length followed by that many bytes):
//
//	Hello     addr string, version u8
//	Raft      one raftpb.Message in its own codec (raftpb.Message.MarshalAppend)
//	Request   seq u64 BE, service string (non-empty), body: the rest
//	Response  seq u64 BE, status u8, code u16 BE, leader string, msg string,
//	          body: the rest
//
// A Response's status tells success (StatusOK: code, leader and msg empty)
// from a handler's error (StatusError: code 0 is a legitimate "no code") and
// from a request for a service the host does not serve
// (StatusUnknownService); an error response carries no body. The decoders
// accept only what the encoders produce, so every byte string has at most one
// meaning.
//
// Concurrency: the encoders and decoders are pure functions, safe for
// concurrent use as long as nobody writes the buffers and values they are
// given while they run. A Reader belongs to one goroutine.
//
// The package owns the byte layout, its encoders and decoders and a Reader
// that cuts frames from an io.Reader within a size budget. It never dials,
// listens, sets deadlines, starts goroutines or keeps state between calls
// beyond the Reader's own buffer. It never panics on input: every decoding
// failure is an error wrapping transport.ErrCorruptFrame or
// transport.ErrFrameTooLarge, or an error of the underlying reader.
package frame
