package raftkit

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/raftkit/raftkit/metrics"
	"github.com/raftkit/raftkit/metrics/prom"
)

// sample returns the value of the series name{labels} in reg: a counter's
// or gauge's value, a histogram's observation count.
func sample(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func TestMetricsReportGroupAndHost(t *testing.T) {
	c := newTCPCluster(t, 3, 1)
	regs := make([]*prometheus.Registry, 3)
	for i := range regs {
		regs[i] = prometheus.NewRegistry()
		s, err := prom.New(regs[i])
		if err != nil {
			t.Fatal(err)
		}
		c.sinks = append(c.sinks, s)
	}
	c.startAll()
	c.applyN(0, 20, "m")
	l := c.leader(0)
	if _, err := c.node(l, 0).ReadIndex(context.Background(), ReadSafe); err != nil {
		t.Fatal(err)
	}
	reg := regs[l]
	g := map[string]string{"group": strconv.FormatUint(c.groups[0], 10), "node": strconv.Itoa(l + 1)}
	at := func(name string, labels map[string]string) float64 {
		v, _ := sample(t, reg, name, labels)
		return v
	}
	waitFor(t, "the leader's gauges", func() bool {
		return at("raftkit_applied_index", g) >= 20 && at("raftkit_follower_match_index", g) >= 20
	})
	for _, tc := range []struct {
		name string
		min  float64
	}{
		{"raftkit_role", 3}, {"raftkit_term", 1}, {"raftkit_commit_index", 20}, {"raftkit_elections_won_total", 1},
		{"raftkit_elections_total", 1}, {"raftkit_prevotes_total", 1}, {"raftkit_leader_changes_total", 1},
		{"raftkit_proposals_total", 20}, {"raftkit_apply_batch_entries", 1}, {"raftkit_log_append_seconds", 1},
		{"raftkit_read_index_seconds", 1},
	} {
		if v := at(tc.name, g); v < tc.min {
			t.Errorf("%s = %v, want at least %v", tc.name, v, tc.min)
		}
	}
	for id := 1; id <= 3; id++ {
		if id == l+1 {
			continue
		}
		f := map[string]string{"group": g["group"], "node": g["node"], "follower": strconv.Itoa(id)}
		if _, ok := sample(t, reg, "raftkit_follower_lag_entries", f); !ok {
			t.Errorf("no lag series for follower %d", id)
		}
	}
	host := map[string]string{"host": c.addrs[l]}
	for _, name := range []string{"raftkit_logengine_fsyncs_total", "raftkit_logengine_written_bytes_total",
		"raftkit_logengine_fsync_seconds", "raftkit_transport_sent_frames_total", "raftkit_transport_received_bytes_total",
		"raftkit_transport_dials_total"} {
		if v := at(name, host); v <= 0 {
			t.Errorf("%s = %v, want more than 0", name, v)
		}
	}
	f := (l + 1) % 3
	if v, _ := sample(t, regs[f], "raftkit_role", map[string]string{"node": strconv.Itoa(f + 1)}); v != 0 {
		t.Errorf("follower's role = %v", v)
	}

	// A stopped host takes its series with it.
	c.stop(l)
	for _, name := range []string{"raftkit_term", "raftkit_follower_lag_entries", "raftkit_logengine_fsyncs_total"} {
		if _, ok := sample(t, reg, name, nil); ok {
			t.Errorf("%s outlived its host", name)
		}
	}
}

// The default sink discards; nothing is required of an embedder.
func TestMetricsDefaultDiscard(t *testing.T) {
	o := HostOptions{DataDir: "/d", Addr: "a:1"}
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%T", o.Metrics) != fmt.Sprintf("%T", metrics.Discard()) {
		t.Fatalf("default sink %T", o.Metrics)
	}
}
