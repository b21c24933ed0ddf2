package checker

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Kind is what an operation does to the counter.
type Kind uint8

// Operation kinds.
const (
	Add  Kind = iota + 1 // increment by Delta; returns the new value
	Read                 // a linearizable get
)

func (k Kind) String() string {
	switch k {
	case Add:
		return "add"
	case Read:
		return "read"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Outcome is what the client learned of an operation.
type Outcome uint8

// Outcomes.
const (
	// OK: acknowledged; Value is what the server returned.
	OK Outcome = iota + 1
	// Failed: definitely without effect (refused before it was logged, or
	// a read that returned nothing).
	Failed
	// Unknown: timed out or lost its connection; it may take effect at
	// any time after its call, or never.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Op is one recorded operation. Times are nanoseconds since the
// recorder started.
type Op struct {
	Client  int     `json:"client"`
	Node    int     `json:"node"` // the server the client starts at
	Kind    Kind    `json:"kind"`
	Delta   int64   `json:"delta,omitempty"`
	Value   int64   `json:"value"`
	Call    int64   `json:"call"`
	Return  int64   `json:"return"`
	Outcome Outcome `json:"outcome"`
	Err     string  `json:"err,omitempty"`
	// Lease marks a read made under the leader's lease (no heartbeat
	// round), for the post-mortem; the check treats all reads alike.
	Lease bool `json:"lease,omitempty"`
}

// Recorder collects operations from concurrent clients.
//
// Concurrency: safe for concurrent use.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewRecorder starts a recorder; operation times count from now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Pending is an operation that has been called and not yet returned.
type Pending struct {
	r  *Recorder
	op Op
}

// Begin records the call of an operation; the caller must End it.
func (r *Recorder) Begin(client, node int, kind Kind, delta int64) *Pending {
	return &Pending{r: r, op: Op{Client: client, Node: node, Kind: kind, Delta: delta,
		Call: int64(time.Since(r.start))}}
}

// MarkLease notes that the operation is a lease read.
func (p *Pending) MarkLease() { p.op.Lease = true }

// End records the operation's return. err, when not nil, is kept as text
// for the post-mortem.
//
// Concurrency: a Pending is ended once, by the goroutine that began it.
func (p *Pending) End(outcome Outcome, value int64, err error) {
	p.op.Return = int64(time.Since(p.r.start))
	p.op.Outcome, p.op.Value = outcome, value
	if err != nil {
		p.op.Err = err.Error()
	}
	p.r.mu.Lock()
	p.r.ops = append(p.r.ops, p.op)
	p.r.mu.Unlock()
}

// Ops returns a copy of the operations ended so far, in the order they
// ended.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Save writes ops to path as JSON lines, one operation a line, so that a
// failed run's history can be checked again offline (Load).
func Save(ops []Op, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, op := range ops {
		if err := enc.Encode(op); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Load reads a history Save wrote.
func Load(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ops []Op
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var op Op
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if op.Kind != Add && op.Kind != Read || op.Outcome < OK || op.Outcome > Unknown {
			return nil, fmt.Errorf("%s:%d: not an operation", path, line)
		}
		ops = append(ops, op)
	}
	return ops, sc.Err()
}
