package snapcopy

import (
	"bytes"
	"context"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/raftkit/raftkit/storage"
)

func TestCombineCRCs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		cs := 1 + r.IntN(300)
		size := 1 + r.IntN(2000)
		data := randomBytes(r.Uint64(), size)
		var crcs []uint32
		for off := 0; off < size; off += cs {
			crcs = append(crcs, crc32.Checksum(data[off:min(off+cs, size)], castagnoli))
		}
		last := int64(size - (len(crcs)-1)*cs)
		if got, want := combineCRCs(crcs, newCRCShift(int64(cs)), last), crc32.Checksum(data, castagnoli); got != want {
			t.Fatalf("%d bytes in chunks of %d: combined %#08x, want %#08x", size, cs, got, want)
		}
	}
	if got := combineCRCs(nil, newCRCShift(1), 0); got != 0 {
		t.Fatalf("no chunks: %#08x", got)
	}
	// A large shift, as for 1 MiB chunks, against a direct computation.
	a, b := randomBytes(3, 100), make([]byte, 1<<20)
	want := crc32.Checksum(append(bytes.Clone(a), b...), castagnoli)
	if got := newCRCShift(1<<20).apply(crc32.Checksum(a, castagnoli)) ^ crc32.Checksum(b, castagnoli); got != want {
		t.Fatalf("1 MiB shift: %#08x, want %#08x", got, want)
	}
}

func TestManifestRoundTrip(t *testing.T) {
	files := []storage.SnapshotFile{{Name: "a", Size: 10, CRC32C: 5}, {Name: "d/b", CRC32C: 0}, {Name: "d/e/c", Size: 1 << 40, CRC32C: 1}}
	got, err := decodeManifest(appendManifest(nil, files))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Fatalf("got %v, want %v", got, files)
	}
	for i := range got {
		if got[i] != files[i] {
			t.Fatalf("got %v, want %v", got, files)
		}
	}
	for _, bad := range [][]byte{nil, {2}, {1}, {1, 1}, {1, 200, 1}, append(appendManifest(nil, files), 0)} {
		if _, err := decodeManifest(bad); err == nil {
			t.Errorf("decodeManifest(%x) succeeded", bad)
		}
	}
}

// FuzzDecodeRequest checks that the request decoder never panics, accepts
// only canonical encodings, and that the server answers whatever it
// accepts without panicking or reading out of bounds.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range [][]byte{
		nil,
		{kindManifest},
		appendManifestRequest(nil, 10, 2),
		appendManifestRequest(nil, 1, 1),
		chunkReq(10, 2, "f", 0, 100),
		chunkReq(10, 2, "f", 50, 50),
		chunkReq(10, 2, "d/g", 0, 0),
		chunkReq(10, 2, "../f", 0, 1),
		chunkReq(10, 2, "f", 1<<63, 1),
		{kindChunk, 0xff, 0xff},
	} {
		f.Add(seed)
	}
	e := newEnv(f, ServerOptions{})
	data := randomBytes(1, 100)
	commitSnapshot(f, e.src.FileSnapshots, 10, 2, map[string][]byte{"f": data, "d/g": nil})
	f.Fuzz(func(t *testing.T, req []byte) {
		r, err := decodeRequest(req)
		if err != nil {
			if wireCode(err) != int(codeInvalid) {
				t.Fatalf("decode error without the invalid code: %v", err)
			}
		} else {
			var again []byte
			if r.kind == kindManifest {
				again = appendManifestRequest(nil, r.index, r.term)
			} else {
				again = appendChunkRequest(nil, r.index, r.term, r.name, int64(r.offset), int(r.length))
			}
			if !bytes.Equal(again, req) {
				t.Fatalf("decoded %+v from %x, which encodes as %x", r, req, again)
			}
		}
		resp, err := e.srv.Handle(context.Background(), testGroup, req)
		if err != nil || r.kind != kindChunk {
			return
		}
		got, _, err := decodeChunk(resp, int(r.length))
		if err != nil || !bytes.Equal(got, data[r.offset:r.offset+uint64(r.length)]) {
			t.Fatalf("chunk %+v: %v", r, err)
		}
	})
}

// FuzzDecodeManifest checks that the copier's manifest decoder never
// panics and accepts only manifests it can write safely.
func FuzzDecodeManifest(f *testing.F) {
	f.Add(appendManifest(nil, []storage.SnapshotFile{{Name: "a", Size: 10, CRC32C: 5}, {Name: "d/b"}}))
	f.Add(appendManifest(nil, nil))
	f.Add([]byte{kindManifest, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, p []byte) {
		files, err := decodeManifest(p)
		if err != nil {
			return
		}
		for _, fl := range files {
			if !validName(fl.Name) || fl.Size < 0 {
				t.Fatalf("accepted %+v", fl)
			}
		}
		if err := checkLayout(files); err != nil {
			t.Fatal(err)
		}
	})
}
