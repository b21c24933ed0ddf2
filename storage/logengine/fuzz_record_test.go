package logengine

import (
	"testing"

	"github.com/raftkit/raftkit/raftpb"
)

// FuzzDecodeRecord feeds arbitrary bytes to the record decoder and to every
// payload decoder: they may reject the input but must never panic or read
// out of bounds, and a record they accept must decode the same way twice.
func FuzzDecodeRecord(f *testing.F) {
	var b []byte
	start := 0
	b, start = beginRecord(b, recEntries)
	b = appendEntriesHeader(b, entriesHeader{group: 1, first: 5, count: 2})
	b = appendEntry(b, &raftpb.Entry{Term: 3, Data: []byte("x")})
	b = appendEntry(b, &raftpb.Entry{Term: 3, Type: raftpb.EntryNoop})
	finishRecord(b, start)
	f.Add(b)
	f.Add(b[:len(b)-1])
	var t []byte
	t, start = beginRecord(t, recTruncate)
	t = appendTruncate(t, truncRec{group: 2, first: 4, prevTerm: 1, last: 9})
	finishRecord(t, start)
	f.Add(t)
	var r []byte
	r, start = beginRecord(r, recReset)
	r = appendReset(r, resetRec{group: 3, index: 10, term: 2})
	finishRecord(r, start)
	f.Add(r)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for pos := 0; pos < len(data); {
			rec, n, status, _ := readRecord(data, pos, 0)
			if status != recOK {
				return
			}
			if n <= 0 || pos+n > len(data) {
				t.Fatalf("record at %d claims size %d of %d bytes", pos, n, len(data))
			}
			decodePayload(t, rec)
			again, n2, _, _ := readRecord(data, pos, 0)
			if n2 != n || again.typ != rec.typ || string(again.payload) != string(rec.payload) {
				t.Fatal("decoding the same record twice differed")
			}
			pos += n
		}
	})
}

func decodePayload(t *testing.T, rec record) {
	switch rec.typ {
	case recEntries, recRewrite:
		it, err := newEntryIter(rec.payload)
		if err != nil {
			return
		}
		for {
			_, _, off, l, ok, err := it.next()
			if err != nil || !ok {
				return
			}
			if off < 0 || off >= len(rec.payload) || uint64(l) > uint64(len(rec.payload)) {
				t.Fatalf("entry encoding at %d length %d outside a %d-byte payload", off, l, len(rec.payload))
			}
		}
	case recTruncate:
		decodeTruncate(rec.payload)
	case recReset:
		decodeReset(rec.payload)
	}
}
