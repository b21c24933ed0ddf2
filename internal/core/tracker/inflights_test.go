package tracker

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// contents returns the live entries of in, oldest first, by walking the ring
// the same way the implementation does.
func contents(in *Inflights) []inflight {
	out := make([]inflight, 0, in.count)
	for i := range in.count {
		out = append(out, in.buf[(in.start+i)%len(in.buf)])
	}
	return out
}

// checkInvariants verifies the structural invariants documented on
// Inflights.
func checkInvariants(t *testing.T, in *Inflights) {
	t.Helper()
	if in.count < 0 || in.count > len(in.buf) || len(in.buf) > in.maxCount {
		t.Fatalf("bad sizes: count=%d len(buf)=%d maxCount=%d", in.count, len(in.buf), in.maxCount)
	}
	if len(in.buf) > 0 && (in.start < 0 || in.start >= len(in.buf)) {
		t.Fatalf("start %d out of ring of %d", in.start, len(in.buf))
	}
	var sum uint64
	live := contents(in)
	for i, e := range live {
		sum += e.bytes
		if i > 0 && e.index <= live[i-1].index {
			t.Fatalf("indexes not strictly increasing: %v", live)
		}
	}
	if sum != in.bytes {
		t.Fatalf("bytes = %d, live entries sum to %d", in.bytes, sum)
	}
}

func wantContents(t *testing.T, in *Inflights, want ...inflight) {
	t.Helper()
	checkInvariants(t, in)
	if got := contents(in); !slices.Equal(got, want) {
		t.Fatalf("contents = %v, want %v", got, want)
	}
	if in.Count() != len(want) {
		t.Fatalf("Count() = %d, want %d", in.Count(), len(want))
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s did not panic", what)
		}
	}()
	f()
}

func TestInflightsNew(t *testing.T) {
	in := NewInflights(10, 0)
	if in.Count() != 0 || in.Bytes() != 0 || in.Full() {
		t.Fatalf("new window: count=%d bytes=%d full=%v", in.Count(), in.Bytes(), in.Full())
	}
	if in.buf != nil {
		t.Fatalf("new window allocated %d slots eagerly", len(in.buf))
	}
	mustPanic(t, "NewInflights(0, 0)", func() { NewInflights(0, 0) })
	mustPanic(t, "NewInflights(-1, 0)", func() { NewInflights(-1, 0) })
}

func TestInflightsFillByCount(t *testing.T) {
	in := NewInflights(10, 0)
	var want []inflight
	for i := range uint64(10) {
		if in.Full() {
			t.Fatalf("full after %d adds", i)
		}
		in.Add(10+i, 100)
		want = append(want, inflight{10 + i, 100})
		wantContents(t, in, want...)
	}
	if !in.Full() {
		t.Fatal("not full at maxCount")
	}
	if in.Bytes() != 1000 {
		t.Fatalf("Bytes() = %d, want 1000", in.Bytes())
	}
	if len(in.buf) != 10 {
		t.Fatalf("ring grew to %d slots, want exactly maxCount 10", len(in.buf))
	}
	mustPanic(t, "Add on a full window", func() { in.Add(100, 1) })
	wantContents(t, in, want...) // the failed Add changed nothing
}

func TestInflightsFillByBytes(t *testing.T) {
	in := NewInflights(10, 1000)
	in.Add(1, 400)
	in.Add(2, 400)
	if in.Full() {
		t.Fatal("full at 800 of 1000 bytes")
	}
	in.Add(3, 300) // may overshoot: the bound is checked before sending
	if !in.Full() {
		t.Fatal("not full at 1100 of 1000 bytes")
	}
	if in.Bytes() != 1100 {
		t.Fatalf("Bytes() = %d, want 1100", in.Bytes())
	}
	mustPanic(t, "Add beyond the byte bound", func() { in.Add(4, 1) })

	in.FreeLE(1)
	if in.Full() {
		t.Fatal("still full at 700 bytes")
	}
	in.Add(4, 300)
	if !in.Full() {
		t.Fatal("not full at exactly 1000 bytes")
	}
	wantContents(t, in, inflight{2, 400}, inflight{3, 300}, inflight{4, 300})
}

func TestInflightsOversizedSingleMessage(t *testing.T) {
	// An empty window must admit one message larger than the byte bound, or
	// such an entry could never be replicated.
	in := NewInflights(5, 100)
	if in.Full() {
		t.Fatal("empty window full")
	}
	in.Add(1, 1<<20)
	if !in.Full() {
		t.Fatal("not full after oversized message")
	}
	in.FreeLE(1)
	if in.Full() || in.Count() != 0 || in.Bytes() != 0 {
		t.Fatalf("after draining: full=%v count=%d bytes=%d", in.Full(), in.Count(), in.Bytes())
	}
}

func TestInflightsZeroByteMessages(t *testing.T) {
	// With a byte bound, zero-byte messages (e.g. empty entries) are limited
	// by count alone.
	in := NewInflights(3, 10)
	for i := range uint64(3) {
		in.Add(i+1, 0)
	}
	if !in.Full() || in.Bytes() != 0 {
		t.Fatalf("full=%v bytes=%d", in.Full(), in.Bytes())
	}
}

func TestInflightsAddRequiresIncreasingIndex(t *testing.T) {
	in := NewInflights(10, 0)
	in.Add(5, 1)
	mustPanic(t, "Add with equal index", func() { in.Add(5, 1) })
	mustPanic(t, "Add with lower index", func() { in.Add(4, 1) })
	in.Add(6, 1)
	in.FreeLE(6)
	// Once empty, any index is accepted: nothing in flight to compare with.
	in.Add(3, 1)
	wantContents(t, in, inflight{3, 1})
}

func TestInflightsFreeLE(t *testing.T) {
	in := NewInflights(10, 0)
	for i := uint64(1); i <= 10; i++ {
		in.Add(i*10, i) // indexes 10, 20, ..., 100; bytes 1..10
	}

	in.FreeLE(5) // below the oldest: stale ack, frees nothing
	if in.Count() != 10 || in.Bytes() != 55 {
		t.Fatalf("after FreeLE(5): count=%d bytes=%d", in.Count(), in.Bytes())
	}

	in.FreeLE(25) // between entries: frees 10 and 20 only
	wantContents(t, in,
		inflight{30, 3}, inflight{40, 4}, inflight{50, 5}, inflight{60, 6},
		inflight{70, 7}, inflight{80, 8}, inflight{90, 9}, inflight{100, 10})
	if in.Bytes() != 52 || in.Full() {
		t.Fatalf("after FreeLE(25): bytes=%d full=%v", in.Bytes(), in.Full())
	}

	in.FreeLE(25) // duplicate ack: no-op
	in.FreeLE(50) // exact boundary is inclusive
	wantContents(t, in,
		inflight{60, 6}, inflight{70, 7}, inflight{80, 8}, inflight{90, 9}, inflight{100, 10})

	in.FreeLE(1000) // beyond the newest: frees everything
	wantContents(t, in)
	if in.Bytes() != 0 || in.start != 0 {
		t.Fatalf("drained window: bytes=%d start=%d", in.Bytes(), in.start)
	}

	in.FreeLE(1) // on an empty window: no-op
	wantContents(t, in)
}

func TestInflightsWraparound(t *testing.T) {
	in := NewInflights(4, 0)
	for i := uint64(1); i <= 4; i++ {
		in.Add(i, i)
	}
	in.FreeLE(2) // live: 3, 4 at ring positions 2, 3
	in.Add(5, 5) // wraps to position 0
	in.Add(6, 6) // position 1
	if in.start != 2 {
		t.Fatalf("start = %d, want 2", in.start)
	}
	if !in.Full() {
		t.Fatal("not full with 4 entries across the wrap")
	}
	wantContents(t, in, inflight{3, 3}, inflight{4, 4}, inflight{5, 5}, inflight{6, 6})

	in.FreeLE(4) // frees the two entries before the wrap point
	if in.start != 0 {
		t.Fatalf("start = %d after freeing up to the wrap, want 0", in.start)
	}
	wantContents(t, in, inflight{5, 5}, inflight{6, 6})
	in.FreeLE(5)
	wantContents(t, in, inflight{6, 6})

	// Go round the ring several times; the storage must never change.
	buf := in.buf
	next := uint64(7)
	for range 20 {
		for !in.Full() {
			in.Add(next, 1)
			next++
		}
		in.FreeLE(next - 2) // leave one behind so start keeps moving
		checkInvariants(t, in)
	}
	if &in.buf[0] != &buf[0] {
		t.Fatal("ring storage reallocated in steady state")
	}
}

func TestInflightsGrowAcrossWrap(t *testing.T) {
	// Grow while the live entries straddle the end of the ring: they must be
	// unwrapped into order in the new storage.
	in := NewInflights(16, 0)
	for i := uint64(1); i <= 4; i++ {
		in.Add(i, 1)
	}
	if len(in.buf) != 4 {
		t.Fatalf("initial ring of %d slots, want 4", len(in.buf))
	}
	in.FreeLE(3)
	for i := uint64(5); i <= 7; i++ {
		in.Add(i, 1) // positions 0, 1, 2: ring is full and wrapped
	}
	in.Add(8, 1) // forces growth
	if len(in.buf) != 8 || in.start != 0 {
		t.Fatalf("after growth: len(buf)=%d start=%d, want 8, 0", len(in.buf), in.start)
	}
	wantContents(t, in, inflight{4, 1}, inflight{5, 1}, inflight{6, 1}, inflight{7, 1}, inflight{8, 1})
}

func TestInflightsGrowthCappedAtMaxCount(t *testing.T) {
	in := NewInflights(6, 0)
	for i := uint64(1); i <= 6; i++ {
		in.Add(i, 1)
	}
	if len(in.buf) != 6 {
		t.Fatalf("ring grew to %d slots, want 6", len(in.buf))
	}
	in = NewInflights(1, 0)
	in.Add(1, 1)
	if len(in.buf) != 1 || !in.Full() {
		t.Fatalf("maxCount 1: len(buf)=%d full=%v", len(in.buf), in.Full())
	}
}

func TestInflightsReset(t *testing.T) {
	in := NewInflights(8, 100)
	for i := uint64(1); i <= 5; i++ {
		in.Add(i, 20)
	}
	in.FreeLE(2)
	in.Add(6, 20)
	in.Add(7, 20)
	if !in.Full() {
		t.Fatal("expected full by bytes before reset")
	}
	buf := in.buf
	in.Reset()
	wantContents(t, in)
	if in.Bytes() != 0 || in.Full() || in.start != 0 {
		t.Fatalf("after Reset: bytes=%d full=%v start=%d", in.Bytes(), in.Full(), in.start)
	}
	if &in.buf[0] != &buf[0] {
		t.Fatal("Reset dropped the ring storage")
	}
	// Indexes may start over after a reset (the leader re-probes).
	in.Add(2, 10)
	wantContents(t, in, inflight{2, 10})
}

func TestInflightsClone(t *testing.T) {
	empty := NewInflights(4, 50)
	ce := empty.Clone()
	ce.Add(1, 1)
	if empty.Count() != 0 || empty.buf != nil {
		t.Fatal("adding to a clone of an empty window changed the original")
	}

	in := NewInflights(4, 50)
	for i := uint64(1); i <= 4; i++ {
		in.Add(i, 10)
	}
	in.FreeLE(2)
	in.Add(5, 10) // wrapped
	c := in.Clone()
	wantContents(t, c, inflight{3, 10}, inflight{4, 10}, inflight{5, 10})
	if c.Bytes() != in.Bytes() || c.Full() != in.Full() || c.maxCount != in.maxCount || c.maxBytes != in.maxBytes {
		t.Fatal("clone differs from original")
	}

	c.FreeLE(4)
	c.Add(6, 30)
	c.Add(7, 1)
	wantContents(t, in, inflight{3, 10}, inflight{4, 10}, inflight{5, 10})
	wantContents(t, c, inflight{5, 10}, inflight{6, 30}, inflight{7, 1})

	in.Reset()
	wantContents(t, c, inflight{5, 10}, inflight{6, 30}, inflight{7, 1})
}

// TestInflightsRandomized drives an Inflights and a naive slice model with
// the same random operations and compares them after every step.
func TestInflightsRandomized(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 0x1f1))
		maxCount := 1 + r.IntN(12)
		var maxBytes uint64
		if r.IntN(2) == 0 {
			maxBytes = uint64(1 + r.IntN(200))
		}
		in := NewInflights(maxCount, maxBytes)
		var model []inflight
		next := uint64(1)

		modelBytes := func() (s uint64) {
			for _, e := range model {
				s += e.bytes
			}
			return s
		}
		modelFull := func() bool {
			return len(model) == maxCount || (maxBytes > 0 && modelBytes() >= maxBytes)
		}

		for step := range 2000 {
			switch op := r.IntN(10); {
			case op < 5: // Add, if there is room
				if modelFull() {
					mustPanic(t, "Add on full window", func() { in.Add(next, 1) })
					break
				}
				b := uint64(r.IntN(60))
				in.Add(next, b)
				model = append(model, inflight{next, b})
				next += 1 + uint64(r.IntN(3))
			case op < 9: // FreeLE, anywhere from below the oldest to past the newest
				to := uint64(0)
				if next > 4 {
					to = next - 4 + uint64(r.IntN(6))
				}
				in.FreeLE(to)
				model = slices.DeleteFunc(model, func(e inflight) bool { return e.index <= to })
			case op == 9 && r.IntN(10) == 0: // occasional Reset
				in.Reset()
				model = model[:0]
			default: // Clone and carry on with the clone
				in = in.Clone()
			}

			checkInvariants(t, in)
			if got := contents(in); !slices.Equal(got, model) {
				t.Fatalf("seed %d step %d: contents %v, model %v", seed, step, got, model)
			}
			if in.Count() != len(model) || in.Bytes() != modelBytes() || in.Full() != modelFull() {
				t.Fatalf("seed %d step %d: count=%d bytes=%d full=%v; model %d %d %v", seed, step,
					in.Count(), in.Bytes(), in.Full(), len(model), modelBytes(), modelFull())
			}
		}
	}
}

// TestInflightsSteadyStateNoAlloc pins down that once the ring has grown to
// its working size, Add and FreeLE do not allocate.
func TestInflightsSteadyStateNoAlloc(t *testing.T) {
	in := NewInflights(64, 1<<20)
	next := uint64(1)
	cycle := func() {
		for range 16 {
			in.Add(next, 1024)
			next++
		}
		in.FreeLE(next - 4)
	}
	for range 10 { // warm up: let the ring grow
		cycle()
	}
	in.FreeLE(next)
	if allocs := testing.AllocsPerRun(100, cycle); allocs != 0 {
		t.Fatalf("steady-state Add/FreeLE allocated %v times per cycle, want 0", allocs)
	}
}

func BenchmarkInflightsAddFreeLE(b *testing.B) {
	in := NewInflights(256, 0)
	for i := uint64(1); i <= 256; i++ { // grow the ring to full size
		in.Add(i, 1)
	}
	in.Reset()
	next := uint64(1)
	b.ReportAllocs()
	for b.Loop() {
		in.Add(next, 100)
		if in.Full() {
			in.FreeLE(next - 128)
		}
		next++
	}
}
