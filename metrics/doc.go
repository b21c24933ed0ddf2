// Package metrics is raftkit's measurement seam: the Sink interface a
// host reports through (HostOptions.Metrics), the Desc of every metric it
// reports (names.go), and Discard. metrics/prom adapts a Sink to a
// Prometheus registry.
//
// It owns names, help texts, labels and buckets; it never stores values
// (a Sink does) and holds no mutable state.
package metrics
