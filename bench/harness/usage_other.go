//go:build !unix

package harness

import "time"

// Usage is this process's resource use so far.
type Usage struct {
	CPU    time.Duration
	MaxRSS int64
}

// ReadUsage is unavailable off Unix: the cells report zero CPU and RSS.
func ReadUsage() Usage { return Usage{} }
