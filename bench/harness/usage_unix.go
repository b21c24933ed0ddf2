//go:build unix

package harness

import (
	"runtime"
	"syscall"
	"time"
)

// Usage is this process's resource use so far.
type Usage struct {
	CPU    time.Duration // user + system, all threads
	MaxRSS int64         // peak resident set, bytes
}

// ReadUsage reads getrusage(RUSAGE_SELF). A cell runs alone in its child
// process, so the numbers belong to that cell.
func ReadUsage() Usage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return Usage{}
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rss := int64(ru.Maxrss)
	// ru_maxrss is in KiB on Linux and the BSDs, in bytes on Darwin.
	if runtime.GOOS != "darwin" && runtime.GOOS != "ios" {
		rss *= 1024
	}
	return Usage{CPU: cpu, MaxRSS: rss}
}
