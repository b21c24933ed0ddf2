package tcp

import "testing"

// TestBatchKeepsBuffersAcrossDrains: the writer's cycle — take a batch,
// frames queue while it is written, recycle it, take and write the next,
// then find the queue drained — keeps both buffers, so steady traffic
// allocates nothing once they have grown.
func TestBatchKeepsBuffersAcrossDrains(t *testing.T) {
	frame := make([]byte, 8<<10)
	var b batch
	add := func() {
		for range 4 {
			b.add(func(buf []byte) []byte { return append(buf, frame...) })
		}
	}
	take := func() []byte {
		buf, n := b.take()
		if n != 4 || len(buf) != 4*len(frame) {
			t.Fatalf("took %d frames in %d bytes", n, len(buf))
		}
		return buf
	}
	cycle := func() {
		add()
		first := take()
		add() // queued while first is being written
		b.recycle(first)
		second := take()
		b.recycle(second)
		if buf, n := b.take(); n != 0 || len(buf) != 0 {
			t.Fatalf("an empty queue handed out %d frames, %d bytes", n, len(buf))
		}
	}
	cycle()
	cycle()
	if allocs := testing.AllocsPerRun(100, cycle); allocs != 0 {
		t.Fatalf("%.1f allocations per cycle in steady state, want 0", allocs)
	}
}
