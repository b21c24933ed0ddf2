package core

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkLeaderHotPath drives the whole in-memory replication loop of a
// three-replica group: propose a batch → leader Ready → AppendEntries to both
// followers → their Readys persisted → acknowledgements → leader Advance →
// commit → committed entries handed out on every node. It reports entries per
// second and heap allocations per entry; the latter must not grow with the
// batch size (per-batch costs amortize, per-entry costs must be zero).
func BenchmarkLeaderHotPath(b *testing.B) {
	for _, batch := range []int{1, 16, 256, 1024} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			nw := newNetwork(b, 3)
			nw.lean = true
			nw.campaign(1)
			leader := nw.node(1)
			data := make([][]byte, batch)
			for i := range data {
				data[i] = make([]byte, 16)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for range b.N {
				if _, _, err := leader.Propose(data...); err != nil {
					b.Fatal(err)
				}
				nw.stabilize()
				// Keep the in-memory logs short, as snapshots would, so the
				// benchmark measures the core and not the harness's copying.
				if leader.log.committed > 4096 {
					for _, id := range nw.ids {
						nw.nodes[id].st.Compact(nw.node(id).log.applied)
					}
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			entries := float64(b.N) * float64(batch)
			b.ReportMetric(entries/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/entries, "allocs/entry")
			if c := leader.log.committed; c < uint64(b.N*batch) {
				b.Fatalf("committed %d of %d entries", c, b.N*batch)
			}
		})
	}
}
