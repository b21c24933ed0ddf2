package prom

import (
	"errors"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkit/raftkit/metrics"
)

// Sink reports raftkit's metrics to a Prometheus registry. Series vectors
// are registered when first used; hosts sharing a Sink (or a registry)
// share them.
//
// Concurrency: safe for concurrent use.
type Sink struct {
	reg prometheus.Registerer

	mu     sync.Mutex
	counts map[string]*prometheus.CounterVec
	gauges map[string]*prometheus.GaugeVec
	hists  map[string]*prometheus.HistogramVec
	funcs  *funcCollector
}

var _ metrics.Sink = (*Sink)(nil)

// New returns a Sink registering with reg (prometheus.DefaultRegisterer,
// or a registry of the caller's). It fails if reg refuses its collector
// of function-backed series.
func New(reg prometheus.Registerer) (*Sink, error) {
	s := &Sink{reg: reg, counts: map[string]*prometheus.CounterVec{}, gauges: map[string]*prometheus.GaugeVec{},
		hists: map[string]*prometheus.HistogramVec{}, funcs: &funcCollector{series: map[string]funcSeries{}}}
	if err := reg.Register(s.funcs); err != nil {
		return nil, err
	}
	return s, nil
}

// register registers c, or returns the collector already registered
// under the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A conflicting registration (same name, other labels) is a
		// programming error of the embedding application; the series then
		// lives unregistered rather than crash a raft worker.
	}
	return c
}

// vector returns the vector of d in m, creating and registering it when
// first asked for.
func vector[V prometheus.Collector](s *Sink, m map[string]V, d *metrics.Desc, create func() V) V {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := m[d.Name]
	if !ok {
		v = register(s.reg, create())
		m[d.Name] = v
	}
	return v
}

// Counter implements metrics.Sink.
func (s *Sink) Counter(d *metrics.Desc, lv ...string) metrics.Counter {
	return vector(s, s.counts, d, func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: d.Name, Help: d.Help}, d.Labels)
	}).WithLabelValues(lv...)
}

// Gauge implements metrics.Sink.
func (s *Sink) Gauge(d *metrics.Desc, lv ...string) metrics.Gauge {
	return vector(s, s.gauges, d, func() *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: d.Name, Help: d.Help}, d.Labels)
	}).WithLabelValues(lv...)
}

// Histogram implements metrics.Sink.
func (s *Sink) Histogram(d *metrics.Desc, lv ...string) metrics.Histogram {
	return vector(s, s.hists, d, func() *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: d.Name, Help: d.Help, Buckets: d.Buckets}, d.Labels)
	}).WithLabelValues(lv...)
}

// CounterFunc implements metrics.Sink.
func (s *Sink) CounterFunc(d *metrics.Desc, f func() float64, lv ...string) {
	s.funcs.add(d, prometheus.CounterValue, f, lv)
}

// GaugeFunc implements metrics.Sink.
func (s *Sink) GaugeFunc(d *metrics.Desc, f func() float64, lv ...string) {
	s.funcs.add(d, prometheus.GaugeValue, f, lv)
}

// Forget implements metrics.Sink.
func (s *Sink) Forget(d *metrics.Desc, lv ...string) {
	s.mu.Lock()
	if v, ok := s.counts[d.Name]; ok {
		v.DeleteLabelValues(lv...)
	}
	if v, ok := s.gauges[d.Name]; ok {
		v.DeleteLabelValues(lv...)
	}
	if v, ok := s.hists[d.Name]; ok {
		v.DeleteLabelValues(lv...)
	}
	s.mu.Unlock()
	s.funcs.remove(d, lv)
}

// funcCollector collects the function-backed series. It is an unchecked
// collector (Describe sends nothing): its series come and go with hosts.
type funcCollector struct {
	mu     sync.Mutex
	series map[string]funcSeries
}

type funcSeries struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	f    func() float64
	lv   []string
}

func seriesKey(d *metrics.Desc, lv []string) string {
	return d.Name + "\x00" + strings.Join(lv, "\x00")
}

func (c *funcCollector) add(d *metrics.Desc, typ prometheus.ValueType, f func() float64, lv []string) {
	c.mu.Lock()
	c.series[seriesKey(d, lv)] = funcSeries{desc: prometheus.NewDesc(d.Name, d.Help, d.Labels, nil), typ: typ, f: f,
		lv: append([]string(nil), lv...)}
	c.mu.Unlock()
}

func (c *funcCollector) remove(d *metrics.Desc, lv []string) {
	c.mu.Lock()
	delete(c.series, seriesKey(d, lv))
	c.mu.Unlock()
}

func (c *funcCollector) Describe(chan<- *prometheus.Desc) {}

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	all := make([]funcSeries, 0, len(c.series))
	for _, s := range c.series {
		all = append(all, s)
	}
	c.mu.Unlock()
	for _, s := range all {
		if m, err := prometheus.NewConstMetric(s.desc, s.typ, s.f(), s.lv...); err == nil {
			ch <- m
		}
	}
}
