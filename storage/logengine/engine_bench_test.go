//go:build linux

package logengine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage/logengine"
	"github.com/raftkit/raftkit/storage/vfs"
)

var benchShapes = []struct{ size, batch int }{
	{16, 1}, {16, 64}, {16, 1024}, {1024, 1}, {1024, 64}, {1024, 1024},
}

// BenchmarkAppend appends batches of entries to one group, each batch made
// durable (one fsync) before the next, on the real file system. Compare with
// BenchmarkRawWriteSync, which writes and fdatasyncs the same payload bytes
// with no framing, index or engine at all: the ratio is the engine's cost.
func BenchmarkAppend(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("entry=%dB/batch=%d", s.size, s.batch), func(b *testing.B) {
			e, err := logengine.Open(vfs.OS{}, b.TempDir(), logengine.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			g := e.Group(1)
			ents := make([]raftpb.Entry, s.batch)
			data := make([]byte, s.size)
			next := uint64(1)
			b.SetBytes(int64(s.size * s.batch))
			b.ResetTimer()
			for range b.N {
				for i := range ents {
					ents[i] = raftpb.Entry{Term: 1, Index: next + uint64(i), Data: data}
				}
				if err := g.Append(ents); err != nil {
					b.Fatal(err)
				}
				next += uint64(s.batch)
				if next > 1<<20 {
					// Keep the index small, as snapshots would.
					if err := g.TruncatePrefix(next - 1); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*s.batch)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkRawWriteSync is the bare limit for BenchmarkAppend: the same
// payload bytes appended to one file with write + fdatasync per batch. The
// prealloc variants reserve the file's blocks first, as the engine does for
// its segments, so fdatasync need not also commit block allocation; the
// grow variants append to a file that grows with every write.
func BenchmarkRawWriteSync(b *testing.B) {
	for _, prealloc := range []bool{false, true} {
		mode := "grow"
		if prealloc {
			mode = "prealloc"
		}
		b.Run(mode, func(b *testing.B) { benchRaw(b, prealloc) })
	}
}

func benchRaw(b *testing.B, prealloc bool) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("entry=%dB/batch=%d", s.size, s.batch), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if prealloc {
				const keepSize = 0x1
				if err := syscall.Fallocate(int(f.Fd()), keepSize, 0, 1<<30); err != nil {
					b.Skipf("fallocate: %v", err)
				}
			}
			buf := make([]byte, s.size*s.batch)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
				if err := syscall.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*s.batch)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
