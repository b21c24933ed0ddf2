package snapcopy

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"testing"
	"time"

	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/vfs"
)

// benchBytes is the snapshot size of the benchmarks: SNAPCOPY_BENCH_BYTES,
// default 1 GiB.
func benchBytes(b *testing.B) int64 {
	if testing.Short() {
		b.Skip("a benchmark of a 1 GiB snapshot on disk")
	}
	s := os.Getenv("SNAPCOPY_BENCH_BYTES")
	if s == "" {
		return 1 << 30
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("SNAPCOPY_BENCH_BYTES=%q: want a positive byte count", s)
	}
	return n
}

const benchFiles = 4

// writeBenchFile writes size pseudo-random bytes to p in 1 MiB writes and
// syncs them once.
func writeBenchFile(b *testing.B, p string, size int64) {
	f, err := vfs.OS{}.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	buf := randomBytes(9, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		buf[0], buf[1], buf[2] = byte(off>>20), byte(off>>28), byte(off>>36) // no two blocks alike
		if _, err := f.Write(buf[:min(int64(len(buf)), size-off)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCopyTCP copies a snapshot of benchFiles files over loopback TCP
// between two directories on disk, syncing the copied files at the end, and
// reports MB/s (10^6 bytes per second) and the seconds before the sync.
func BenchmarkCopyTCP(b *testing.B) {
	size := benchBytes(b)
	src := newTCPHost(b, ServerOptions{})
	w, err := src.snaps.Create(raftMeta(10, 2))
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchFiles {
		n := size / benchFiles
		if i == benchFiles-1 {
			n = size - n*(benchFiles-1)
		}
		writeBenchFile(b, path.Join(w.Dir(), fmt.Sprintf("part-%d", i)), n)
	}
	if err := w.Commit(); err != nil {
		b.Fatal(err)
	}
	dst, err := storage.OpenFileSnapshots(vfs.OS{}, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c := newTCPClient(b)
	var took, copying time.Duration
	b.ResetTimer()
	for range b.N {
		w, err := dst.Create(raftMeta(10, 2))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := Copy(b.Context(), c, src.tr.Addr(), testGroup, 10, 2, dst.FS(), w.Dir(), benchOpts()); err != nil {
			b.Fatal(err)
		}
		copying += time.Since(start)
		syncDir(b, dst.FS(), w.Dir())
		took += time.Since(start)
		b.StopTimer()
		if err := w.Abort(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(size)*float64(b.N)/took.Seconds()/1e6, "MB/s")
	b.ReportMetric(copying.Seconds()/float64(b.N), "copy-s/op") // before the sync
}

// syncDir syncs every file directly in dir.
func syncDir(b *testing.B, fsys vfs.FS, dir string) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range names {
		f, err := fsys.OpenRW(path.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteFsync writes the same number of bytes to one file with
// 1 MiB writes and one fdatasync: the bandwidth to compare Copy with.
func BenchmarkWriteFsync(b *testing.B) {
	size := benchBytes(b)
	dir := b.TempDir()
	var took time.Duration
	b.ResetTimer()
	for i := range b.N {
		p := path.Join(dir, fmt.Sprint(i))
		start := time.Now()
		writeBenchFile(b, p, size)
		took += time.Since(start)
		b.StopTimer()
		if err := os.Remove(p); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(size)*float64(b.N)/took.Seconds()/1e6, "MB/s")
}

// benchOpts are Copy's options: the defaults, or SNAPCOPY_BENCH_CHUNK and
// SNAPCOPY_BENCH_WINDOW when set, to compare others.
func benchOpts() CopyOptions {
	cs, _ := strconv.Atoi(os.Getenv("SNAPCOPY_BENCH_CHUNK"))
	w, _ := strconv.Atoi(os.Getenv("SNAPCOPY_BENCH_WINDOW"))
	return CopyOptions{ChunkSize: cs, Window: w}
}
