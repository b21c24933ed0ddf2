package prom

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raftkit/raftkit/metrics"
)

func TestSinkReportsEveryKind(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	s.Counter(metrics.Proposals, "7", "1").Add(3)
	s.Counter(metrics.Proposals, "7", "1").Add(2) // the same series again
	s.Gauge(metrics.Term, "7", "1").Set(4)
	s.Histogram(metrics.AppendLatency, "7", "1").Observe(0.001)
	fsyncs := 0.0
	s.CounterFunc(metrics.LogFsyncs, func() float64 { fsyncs++; return fsyncs }, "127.0.0.1:1")

	want := `
# HELP raftkit_proposals_total Tasks this member proposed as leader.
# TYPE raftkit_proposals_total counter
raftkit_proposals_total{group="7",node="1"} 5
# HELP raftkit_term The member's current term.
# TYPE raftkit_term gauge
raftkit_term{group="7",node="1"} 4
# HELP raftkit_logengine_fsyncs_total Group-commit fsyncs of the host's log engine.
# TYPE raftkit_logengine_fsyncs_total counter
raftkit_logengine_fsyncs_total{host="127.0.0.1:1"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"raftkit_proposals_total", "raftkit_term", "raftkit_logengine_fsyncs_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "raftkit_log_append_seconds"); err != nil || n != 1 {
		t.Fatalf("histogram series: %d, %v", n, err)
	}

	s.Forget(metrics.Term, "7", "1")
	s.Forget(metrics.LogFsyncs, "127.0.0.1:1")
	if n, _ := testutil.GatherAndCount(reg, "raftkit_term", "raftkit_logengine_fsyncs_total"); n != 0 {
		t.Fatalf("%d series left after Forget", n)
	}
}

// Two hosts' sinks on one registry share the vectors instead of failing.
func TestSinksShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	a.Counter(metrics.Proposals, "1", "1").Add(1)
	b.Counter(metrics.Proposals, "1", "2").Add(1)
	a.CounterFunc(metrics.Dials, func() float64 { return 1 }, "a")
	b.CounterFunc(metrics.Dials, func() float64 { return 2 }, "b")
	if n, err := testutil.GatherAndCount(reg, "raftkit_proposals_total", "raftkit_transport_dials_total"); err != nil || n != 4 {
		t.Fatalf("series: %d, %v", n, err)
	}
}

func TestDiscard(t *testing.T) {
	d := metrics.Discard()
	d.Counter(metrics.Proposals).Add(1)
	d.Gauge(metrics.Term).Set(1)
	d.Histogram(metrics.ApplyBatch).Observe(1)
	d.CounterFunc(metrics.Dials, func() float64 { t.Fatal("called"); return 0 })
	d.Forget(metrics.Term)
	if len(metrics.All()) < 25 {
		t.Fatal("metric list shrank")
	}
	for _, desc := range metrics.All() {
		if !strings.HasPrefix(desc.Name, "raftkit_") || desc.Help == "" || len(desc.Labels) == 0 {
			t.Errorf("%+v", desc)
		}
	}
}
