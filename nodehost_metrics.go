package raftkit

import (
	"time"

	"github.com/raftkit/raftkit/metrics"
	"github.com/raftkit/raftkit/transport/tcp"
)

// hostLabel names the host in its metrics: its raft address, or its data
// directory when it has none (an in-process transport).
func hostLabel(o *HostOptions) string {
	if o.Addr != "" {
		return o.Addr
	}
	return o.DataDir
}

// observeFsyncs makes the log engine report each group-commit fsync to the
// host's histogram, keeping an observer the caller set.
func observeFsyncs(o *HostOptions) {
	h := o.Metrics.Histogram(metrics.LogFsyncTime, hostLabel(o))
	prev := o.LogEngine.SyncObserver
	o.LogEngine.SyncObserver = func(d time.Duration) {
		h.Observe(d.Seconds())
		if prev != nil {
			prev(d)
		}
	}
}

// statser is what the TCP transport offers beyond transport.Transport.
type statser interface{ Stats() tcp.Stats }

// hostFuncs are the host series read from statistics the log engine and
// the transport keep anyway.
func (h *NodeHost) hostFuncs() map[*metrics.Desc]func() float64 {
	f := map[*metrics.Desc]func() float64{
		metrics.LogBytes:  func() float64 { return float64(h.engine.Stats().BytesWritten) },
		metrics.LogFsyncs: func() float64 { return float64(h.engine.Stats().Fsyncs) },
	}
	if ts, ok := h.trans.(statser); ok {
		f[metrics.FramesOut] = func() float64 { return float64(ts.Stats().FramesOut) }
		f[metrics.FramesIn] = func() float64 { return float64(ts.Stats().FramesIn) }
		f[metrics.BytesOut] = func() float64 { return float64(ts.Stats().BytesOut) }
		f[metrics.BytesIn] = func() float64 { return float64(ts.Stats().BytesIn) }
		f[metrics.Dials] = func() float64 { return float64(ts.Stats().Dials) }
		f[metrics.DialFailures] = func() float64 { return float64(ts.Stats().DialFailures) }
		f[metrics.DroppedSends] = func() float64 {
			st := ts.Stats()
			return float64(st.DroppedSends + st.DroppedQueued)
		}
	}
	return f
}

func (h *NodeHost) registerHostMetrics() {
	for d, fn := range h.hostFuncs() {
		h.opts.Metrics.CounterFunc(d, fn, hostLabel(&h.opts))
	}
}

func (h *NodeHost) forgetHostMetrics() {
	for d := range h.hostFuncs() {
		h.opts.Metrics.Forget(d, hostLabel(&h.opts))
	}
	h.opts.Metrics.Forget(metrics.LogFsyncTime, hostLabel(&h.opts))
}
