package raftkit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkApply measures tasks through the whole runtime: Apply on the
// leader, replication to two followers over the in-process network, the log
// engine on the real disk (three hosts' fsyncs on one machine), apply, and
// the Future. window is the number of tasks kept in flight.
//
//	go test -run XXX -bench Apply -benchtime 100000x .
func BenchmarkApply(b *testing.B) {
	for _, window := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			c := newTestCluster(b, 3, 1)
			c.dirs = []string{b.TempDir(), b.TempDir(), b.TempDir()}
			// Election timeouts of 100-200 ms: a slow fsync on a shared disk
			// must not depose the leader mid-measurement.
			c.tick = 10 * time.Millisecond
			c.startAll()
			c.applyN(0, 1, "warm")
			n := c.node(c.leader(0), 0)
			data := make([]byte, 16)
			futs := make(chan *Future, window)
			done := make(chan error, 1)
			go func() {
				for range b.N {
					if _, err := (<-futs).Wait(context.Background()); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; {
				fut, err := n.Apply(Task{Data: data})
				if err != nil {
					continue // busy: the window is ahead of the budgets
				}
				futs <- fut
				i++
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
