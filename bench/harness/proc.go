package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Command prepares exe args as a child process that cannot outlive this
// one: ctx's end kills it (SIGKILL), and on Linux so does this process's
// death, even by SIGKILL (Pdeathsig). The caller must Wait for it (or use
// Run/Output), which reaps it.
func Command(ctx context.Context, exe string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, exe, args...)
	// Do not wait forever for a killed child's grandchildren to close
	// inherited pipes.
	cmd.WaitDelay = 5 * time.Second
	setDeathSignal(cmd)
	return cmd
}

// RunChild runs exe args to completion and returns its stdout. stderr is
// kept as a tail for error messages and also copied to log when log is
// not nil (verbose runs). The error, if any, carries that tail.
func RunChild(ctx context.Context, log io.Writer, exe string, args ...string) ([]byte, error) {
	cmd := Command(ctx, exe, args...)
	var out bytes.Buffer
	tail := NewTail(8 << 10)
	cmd.Stdout = &out
	cmd.Stderr = tail
	if log != nil {
		cmd.Stderr = io.MultiWriter(tail, log)
	}
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w%s", strings.Join(args[:min(1, len(args))], " "), err, tail.Indented())
	}
	return out.Bytes(), nil
}

// Tail is an io.Writer keeping the last bytes written: enough of a
// child's stderr to explain a failure without holding a chatty system's
// whole log.
type Tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// NewTail keeps the last max bytes.
func NewTail(max int) *Tail { return &Tail{max: max} }

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// Indented returns the tail's last lines indented under an error message,
// or "" if nothing was written.
func (t *Tail) Indented() string {
	s := strings.TrimSpace(t.String())
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	lines = lines[max(0, len(lines)-15):]
	return "\n    | " + strings.Join(lines, "\n    | ")
}
