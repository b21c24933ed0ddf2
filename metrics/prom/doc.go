// Package prom adapts raftkit's metrics.Sink to Prometheus
// (github.com/prometheus/client_golang): pass prom.New(registry) as
// HostOptions.Metrics and serve the registry with promhttp.
//
// It owns the vectors it registers; it never starts goroutines or serves
// HTTP itself.
package prom
