package snapcopy

// This file is the wire format of the snapshot service and its errors; see
// doc.go for the layout.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path"
	"strings"

	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/transport"
)

// Request and response kinds: the first byte of every message.
const (
	kindManifest byte = 1
	kindChunk    byte = 2
)

// Limits every decoder enforces.
const (
	// maxChunkSize bounds the length of one chunk request, hence the memory
	// one request makes a server allocate. It fits a default TCP frame
	// (64 MiB) with room to spare.
	maxChunkSize = 16 << 20
	// maxNameLen bounds a file name.
	maxNameLen = 4096
	// chunkHeaderSize is the kind byte and the CRC32C ahead of chunk data.
	chunkHeaderSize = 1 + 4
	// manifestRequestSize is kind, index and term.
	manifestRequestSize = 1 + 8 + 8
)

// Wire error codes, carried by transport.WireError. They are clear of
// raftkit's own codes (0–11), which a Source's errors may carry.
const (
	// codeGone: the requested snapshot is not the source's latest and no
	// session pins it. The caller gets ErrSnapshotGone.
	codeGone uint16 = 200
	// codeInvalid: the request is malformed or asks for something the
	// snapshot does not hold. Retrying cannot help.
	codeInvalid uint16 = 201
	// codeUnavailable: the server is closed (its host is shutting down).
	// A caller may retry: a restarted host serves again.
	codeUnavailable uint16 = 202
)

// ErrSnapshotGone: the source no longer has the requested snapshot (a newer
// one replaced it); the copy cannot finish and the caller should wait for a
// new MsgSnap. Server and Copy errors match it with errors.Is; it crosses
// the wire as code 200.
var ErrSnapshotGone = errors.New("snapcopy: snapshot gone")

// wireError is an error of the server that keeps its code across the wire.
type wireError struct {
	code uint16
	err  error
}

func (e *wireError) Error() string { return e.err.Error() }
func (e *wireError) Unwrap() error { return e.err }

// WireError implements transport.WireError.
func (e *wireError) WireError() (code uint16, leader string) { return e.code, "" }

var _ transport.WireError = (*wireError)(nil)

func goneError(format string, args ...any) error {
	return &wireError{codeGone, fmt.Errorf("%w: %s", ErrSnapshotGone, fmt.Sprintf(format, args...))}
}

func invalidError(format string, args ...any) error {
	return &wireError{codeInvalid, fmt.Errorf("snapcopy: invalid request: %s", fmt.Sprintf(format, args...))}
}

var errServerClosed = &wireError{codeUnavailable, errors.New("snapcopy: server closed")}

// validName reports whether name is a file name a snapshot may hold: a
// clean, relative, slash-separated path with no "." or ".." component, no
// NUL and at most maxNameLen bytes. It accepts what storage's manifests
// accept, less "." and NUL, which no real file is named.
func validName(name string) bool {
	return name != "" && len(name) <= maxNameLen && path.Clean(name) == name &&
		!path.IsAbs(name) && name != "." && name != ".." && !strings.HasPrefix(name, "../") &&
		!strings.ContainsRune(name, 0)
}

// request is a decoded request; name, offset and length are for chunks.
type request struct {
	kind        byte
	index, term uint64
	name        string
	offset      uint64
	length      uint32
}

func appendManifestRequest(b []byte, index, term uint64) []byte {
	b = append(b, kindManifest)
	b = binary.BigEndian.AppendUint64(b, index)
	return binary.BigEndian.AppendUint64(b, term)
}

func appendChunkRequest(b []byte, index, term uint64, name string, offset int64, length int) []byte {
	b = append(b, kindChunk)
	b = binary.BigEndian.AppendUint64(b, index)
	b = binary.BigEndian.AppendUint64(b, term)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(length))
	b = binary.AppendUvarint(b, uint64(len(name)))
	return append(b, name...)
}

// decoder reads a message front to back; the first failure sticks, so
// callers check err once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail("truncated %s", what)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8(what string) byte {
	if p := d.take(1, what); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u32(what string) uint32 {
	if p := d.take(4, what); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if p := d.take(8, what); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// uvarint reads a minimal uvarint no larger than limit.
func (d *decoder) uvarint(what string, limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b)
	switch {
	case k <= 0:
		d.fail("bad %s varint", what)
		return 0
	case k > 1 && d.b[k-1] == 0:
		d.fail("non-minimal %s varint", what)
		return 0
	case v > limit:
		d.fail("%s %d exceeds %d", what, v, limit)
		return 0
	}
	d.b = d.b[k:]
	return v
}

// name reads a length-prefixed file name and checks it with validName.
func (d *decoder) name() string {
	n := d.uvarint("name length", maxNameLen)
	p := d.take(int(n), "name")
	if d.err != nil {
		return ""
	}
	if s := string(p); validName(s) {
		return s
	}
	d.fail("bad file name %q", p)
	return ""
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// decodeRequest decodes a request. Errors are invalid-request wire errors.
// It never panics and does not retain p.
func decodeRequest(p []byte) (request, error) {
	d := decoder{b: p}
	r := request{kind: d.u8("kind")}
	switch {
	case d.err != nil:
	case r.kind == kindManifest:
		r.index, r.term = d.u64("index"), d.u64("term")
	case r.kind == kindChunk:
		r.index, r.term = d.u64("index"), d.u64("term")
		r.offset, r.length = d.u64("offset"), d.u32("length")
		r.name = d.name()
		if d.err == nil && (r.length > maxChunkSize || r.offset > math.MaxInt64) {
			d.fail("chunk of %d bytes at %d is beyond the limits (%d bytes a chunk)", r.length, r.offset, maxChunkSize)
		}
	default:
		d.fail("unknown request kind %d", r.kind)
	}
	if err := d.end(); err != nil {
		return request{}, invalidError("%v", err)
	}
	return r, nil
}

// appendManifest encodes the manifest response listing files.
func appendManifest(b []byte, files []storage.SnapshotFile) []byte {
	b = append(b, kindManifest)
	b = binary.AppendUvarint(b, uint64(len(files)))
	for _, f := range files {
		b = binary.AppendUvarint(b, uint64(len(f.Name)))
		b = append(b, f.Name...)
		b = binary.BigEndian.AppendUint64(b, uint64(f.Size))
		b = binary.BigEndian.AppendUint32(b, f.CRC32C)
	}
	return b
}

// decodeManifest decodes a manifest response and checks that the files can
// be written under a directory: valid, distinct names, none of them a
// directory of another, sizes that fit an int64, and empty files with the
// CRC32C of no bytes (0).
func decodeManifest(p []byte) ([]storage.SnapshotFile, error) {
	d := decoder{b: p}
	if k := d.u8("kind"); d.err == nil && k != kindManifest {
		d.fail("response kind %d, want a manifest", k)
	}
	// Every entry takes at least 1+1+8+4 bytes: bound the count by what is
	// left before allocating.
	n := d.uvarint("file count", uint64(len(d.b)/14))
	files := make([]storage.SnapshotFile, 0, n)
	for range n {
		f := storage.SnapshotFile{Name: d.name()}
		size := d.u64("size")
		f.CRC32C = d.u32("crc")
		if d.err != nil {
			break
		}
		if size > math.MaxInt64 || (size == 0 && f.CRC32C != 0) {
			d.fail("file %q: size %d with crc %#08x", f.Name, size, f.CRC32C)
			break
		}
		f.Size = int64(size)
		files = append(files, f)
	}
	if err := d.end(); err != nil {
		return nil, fmt.Errorf("snapcopy: malformed manifest: %w", err)
	}
	if err := checkLayout(files); err != nil {
		return nil, fmt.Errorf("snapcopy: malformed manifest: %w", err)
	}
	return files, nil
}

// checkLayout fails if two files have the same name or one is a directory
// of another ("a" and "a/b").
func checkLayout(files []storage.SnapshotFile) error {
	names := make(map[string]bool, len(files))
	for _, f := range files {
		if names[f.Name] {
			return fmt.Errorf("file %q listed twice", f.Name)
		}
		names[f.Name] = true
	}
	for _, f := range files {
		for dir := path.Dir(f.Name); dir != "."; dir = path.Dir(dir) {
			if names[dir] {
				return fmt.Errorf("%q is both a file and the directory of %q", dir, f.Name)
			}
		}
	}
	return nil
}

// decodeChunk checks a chunk response of want data bytes and returns the
// data, which aliases p, and the CRC32C the server computed over it.
func decodeChunk(p []byte, want int) (data []byte, crc uint32, err error) {
	switch {
	case len(p) < chunkHeaderSize || p[0] != kindChunk:
		return nil, 0, errors.New("snapcopy: malformed chunk response")
	case len(p)-chunkHeaderSize != want:
		return nil, 0, fmt.Errorf("snapcopy: chunk response of %d bytes, asked for %d", len(p)-chunkHeaderSize, want)
	}
	return p[chunkHeaderSize:], binary.BigEndian.Uint32(p[1:]), nil
}
