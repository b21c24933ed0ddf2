package metrics

// Desc describes one metric: its name (Prometheus style, with unit
// suffix), help text, the names of its labels, and for histograms the
// bucket upper bounds. Descs are values the library declares once (see
// names.go); a Sink may key its series on the Desc pointer or the name.
type Desc struct {
	Name    string
	Help    string
	Labels  []string
	Buckets []float64 // histograms only
}

// Counter only grows.
type Counter interface{ Add(delta float64) }

// Gauge goes up and down.
type Gauge interface{ Set(v float64) }

// Histogram counts observations into buckets.
type Histogram interface{ Observe(v float64) }

// Sink receives raftkit's measurements. raftkit asks for each series
// once (when a host or group starts) and keeps the handle, so the calls
// on the hot path are the handles' Add, Set and Observe.
//
// Concurrency: every method of a Sink and of the handles it returns must
// be safe for concurrent use; handles are called on raft and apply
// workers, so they must not block.
type Sink interface {
	// Counter, Gauge and Histogram return the series of d with the given
	// label values (as many as d.Labels, in order).
	Counter(d *Desc, labelValues ...string) Counter
	Gauge(d *Desc, labelValues ...string) Gauge
	Histogram(d *Desc, labelValues ...string) Histogram
	// CounterFunc and GaugeFunc register a series whose value f reads when
	// metrics are collected, for what raftkit already counts (the log
	// engine's and the transport's statistics). f must be cheap and safe
	// for concurrent use.
	CounterFunc(d *Desc, f func() float64, labelValues ...string)
	GaugeFunc(d *Desc, f func() float64, labelValues ...string)
	// Forget removes the series of d with the given label values, when the
	// group or host they describe stops.
	Forget(d *Desc, labelValues ...string)
}

// Discard returns a Sink that drops everything: the default when none is
// configured.
func Discard() Sink { return discard{} }

type discard struct{}

type nop struct{}

func (nop) Add(float64)     {}
func (nop) Set(float64)     {}
func (nop) Observe(float64) {}

func (discard) Counter(*Desc, ...string) Counter             { return nop{} }
func (discard) Gauge(*Desc, ...string) Gauge                 { return nop{} }
func (discard) Histogram(*Desc, ...string) Histogram         { return nop{} }
func (discard) CounterFunc(*Desc, func() float64, ...string) {}
func (discard) GaugeFunc(*Desc, func() float64, ...string)   {}
func (discard) Forget(*Desc, ...string)                      {}
