package testutil

import (
	"bytes"
	"sync"
)

// Buffer is an io.Writer that many goroutines may write to while a test
// reads what they wrote (a logger's or a command's output).
//
// Concurrency: safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
