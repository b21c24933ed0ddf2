package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// printer writes the demo's output: timestamped lines, headings and
// explanations, from the main flow and the narrator alike.
//
// Concurrency: safe for concurrent use; each call's output stays whole.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

// sayAt prints a line stamped with t's offset from the demo's start.
func (p *printer) sayAt(t time.Time, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%6.3fs] %s\n", t.Sub(p.start).Seconds(), fmt.Sprintf(format, args...))
}

func (p *printer) say(format string, args ...any) { p.sayAt(time.Now(), format, args...) }

func (p *printer) heading(n int, title string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\n%d. %s\n\n", n, title)
}

// explain prints a paragraph for the reader, wrapped and indented, without
// a timestamp: it describes what is about to happen, not an event.
func (p *printer) explain(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > 88 {
			fmt.Fprintf(p.w, "   %s\n", line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		fmt.Fprintf(p.w, "   %s\n", line)
	}
	fmt.Fprintln(p.w)
}

// block prints pre-formatted lines (a table) as they are.
func (p *printer) block(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, s)
}

// narrator follows the servers' JSON log files as they grow and tells, in
// plain words, what each log record of interest means: elections, votes,
// leadership, restarts.
//
// Concurrency: flush may be called from any goroutine; the main flow calls
// it before printing so that what the logs said so far comes first.
type narrator struct {
	p     *printer
	names []string // names[i] is the name of node ID i+1
	addrs map[string]string

	mu       sync.Mutex
	files    []*tailFile
	preVote  map[int]uint64  // by node index: the term of its latest pre-vote
	preVotes map[int]int     // by node index: how many pre-votes it started
	told     map[string]bool // leaderships already told ("node/term")
	seq      int

	startOnce sync.Once
	started   bool // set by start, under mu
	stop      chan struct{}
	done      chan struct{}
}

// tailFile is one node's log file and how far it has been read.
type tailFile struct {
	node    int
	path    string
	off     int64
	partial []byte // the start of a line not yet terminated
}

// logEvent is one narrated sentence.
type logEvent struct {
	t    time.Time
	node int
	text string
	seq  int // arrival order, to keep equal timestamps stable
}

func newNarrator(p *printer, c *cluster) *narrator {
	n := &narrator{p: p, addrs: map[string]string{}, preVote: map[int]uint64{}, preVotes: map[int]int{}, told: map[string]bool{},
		stop: make(chan struct{}), done: make(chan struct{})}
	for i, s := range c.nodes {
		n.names = append(n.names, s.name)
		n.addrs[s.addr] = s.name
		n.files = append(n.files, &tailFile{node: i, path: s.logPath})
	}
	return n
}

// run flushes every 100ms until stopped. A panic in the narration is
// printed, not raised: it must not end the demo without its cleanup.
func (n *narrator) run() {
	defer close(n.done)
	defer func() {
		if r := recover(); r != nil {
			n.p.say("(narration stopped: %v)", r)
		}
	}()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			n.flush()
			return
		case <-t.C:
			n.flush()
		}
	}
}

// start begins following the logs; calls after the first do nothing.
func (n *narrator) start() {
	n.startOnce.Do(func() {
		n.mu.Lock()
		n.started = true
		n.mu.Unlock()
		go n.run()
	})
}

// preVotesOf is how many pre-votes node (an index) has logged so far.
func (n *narrator) preVotesOf(node int) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.preVotes[node]
}

// close stops the narrator after a last flush. Safe to call once, whether
// or not start was called.
func (n *narrator) close() {
	n.startOnce.Do(func() {}) // no start after this
	n.mu.Lock()
	started := n.started
	n.mu.Unlock()
	if !started {
		n.flush()
		return
	}
	close(n.stop)
	<-n.done
}

// flush reads what the logs gained since the last flush and prints the
// narrated events in time order.
func (n *narrator) flush() {
	n.mu.Lock()
	defer n.mu.Unlock()
	var evs []logEvent
	for _, f := range n.files {
		for _, line := range f.readLines() {
			if ev, ok := n.describe(f.node, line); ok {
				n.seq++
				ev.seq = n.seq
				evs = append(evs, ev)
			}
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].t.Before(evs[j].t) })
	for _, ev := range evs {
		n.p.sayAt(ev.t, "%s: %s", n.names[ev.node], ev.text)
	}
}

// readLines returns the complete lines appended since the last call. A
// file not yet created has no lines.
func (f *tailFile) readLines() []string {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil
	}
	defer fh.Close()
	if _, err := fh.Seek(f.off, io.SeekStart); err != nil {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(fh, 4<<20))
	if err != nil || len(b) == 0 {
		return nil
	}
	f.off += int64(len(b))
	b = append(f.partial, b...)
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		f.partial = b
		return nil
	}
	f.partial = append([]byte(nil), b[end+1:]...)
	return strings.Split(string(b[:end]), "\n")
}

// record is one parsed JSON log line.
type record map[string]any

func (r record) str(k string) string { s, _ := r[k].(string); return s }

func (r record) num(k string) uint64 {
	if n, ok := r[k].(json.Number); ok {
		v, _ := strconv.ParseUint(n.String(), 10, 64)
		return v
	}
	return 0
}

func (r record) flag(k string) bool { b, _ := r[k].(bool); return b }

// name is the name of node ID id.
func (n *narrator) name(id uint64) string {
	if id >= 1 && int(id) <= len(n.names) {
		return n.names[id-1]
	}
	return fmt.Sprintf("node ID %d", id)
}

// describe turns one log line of node (an index) into a sentence, or
// reports that the line is not worth telling. Lines that are not JSON (a
// start-up error, a panic) are told as they are.
func (n *narrator) describe(node int, line string) (logEvent, bool) {
	line = strings.TrimSpace(line)
	if line == "" {
		return logEvent{}, false
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber() // group IDs exceed float64's exact integers
	var r record
	if err := dec.Decode(&r); err != nil || r == nil {
		return logEvent{t: time.Now(), node: node, text: "says: " + line}, true
	}
	t, err := time.Parse(time.RFC3339Nano, r.str("time"))
	if err != nil {
		t = time.Now()
	}
	text := n.sentence(node, r)
	return logEvent{t: t, node: node, text: text}, text != ""
}

// sentence is the plain-words meaning of a record, "" for records the
// demo leaves out.
func (n *narrator) sentence(node int, r record) string {
	term := r.num("term")
	msg := r.str("msg")
	switch msg {
	case "counter server started":
		return fmt.Sprintf("process up, serving raft and clients on %s", r.str("addr"))
	case "raft core started":
		last, commit := r.num("last"), r.num("commit")
		switch {
		case last == 0:
			return fmt.Sprintf("starts as a follower in term %d with an empty log; its election timer is running", term)
		case commit == 0:
			return fmt.Sprintf("restarts from its data directory: term %d and log entries 1..%d survived. "+
				"Which of them are committed it learns from the leader; until then its counter is 0", term, last)
		}
		return fmt.Sprintf("restarts from its data directory: term %d and log entries 1..%d survived, "+
			"1..%d known committed; it applies those again to rebuild its counter", term, last, commit)
	case "starting pre-vote":
		n.preVote[node] = term
		n.preVotes[node]++
		return fmt.Sprintf("election timer fired without word from a leader: starts a PRE-VOTE, asking "+
			"the others whether they would elect it in term %d. Its own term stays %d: a pre-vote "+
			"changes nothing until it wins", term+1, term)
	case "answering MsgPreVote":
		cand, ct := n.name(r.num("candidate")), r.num("candidate_term")
		if r.flag("granted") {
			return fmt.Sprintf("grants %s's pre-vote for term %d (its own term stays %d)", cand, ct, term)
		}
		return fmt.Sprintf("refuses %s's pre-vote for term %d (a node refuses when the candidate's log "+
			"is behind its own, or while it still hears from a leader)", cand, ct)
	case "starting election":
		if pv, ok := n.preVote[node]; ok && pv+1 == term {
			return fmt.Sprintf("won its pre-vote (a majority would vote for it), so it starts a real "+
				"ELECTION: its term becomes %d, it votes for itself and asks the others", term)
		}
		return fmt.Sprintf("starts an ELECTION: its term becomes %d, it votes for itself and asks the others", term)
	case "answering MsgVote":
		cand := n.name(r.num("candidate"))
		if r.flag("granted") {
			return fmt.Sprintf("votes for %s in term %d", cand, term)
		}
		if v := r.num("voted_for"); v != 0 && v != r.num("candidate") {
			return fmt.Sprintf("refuses %s: it already voted for %s in term %d (one vote per term)", cand, n.name(v), term)
		}
		return fmt.Sprintf("refuses its vote to %s in term %d (a node votes only for a candidate "+
			"whose log is at least as up to date as its own)", cand, term)
	case "became leader":
		// The raft core and the runtime both log it; tell it once.
		key := fmt.Sprintf("%d/%d", node, term)
		if n.told[key] {
			return ""
		}
		n.told[key] = true
		s := fmt.Sprintf("becomes LEADER of term %d, elected by a majority", term)
		if _, ok := r["last"]; ok {
			s += fmt.Sprintf(". It appends an empty entry of its own term at index %d: committing it "+
				"commits every entry before it", r.num("last")+1)
		}
		return s
	case "following leader":
		return fmt.Sprintf("follows %s, the leader of term %d", n.name(r.num("leader")), term)
	case "stopped leading":
		return fmt.Sprintf("stops leading (term %d)", term)
	case "transport: peer unreachable":
		peer := r.str("peer")
		if name, ok := n.addrs[peer]; ok {
			peer = name + " (" + peer + ")"
		}
		return fmt.Sprintf("cannot reach %s; raft drops what it sent and retries later", peer)
	case "counter server stopping":
		return fmt.Sprintf("got %s: closing down", r.str("signal"))
	case "counter server stopped":
		return "stopped cleanly"
	}
	if strings.HasPrefix(msg, "stepping down") {
		return fmt.Sprintf("steps down in term %d: it has not heard from a majority for an election timeout", term)
	}
	if lvl := r.str("level"); lvl == "WARN" || lvl == "ERROR" {
		s := fmt.Sprintf("[%s] %s", lvl, msg)
		if e := r.str("err"); e != "" {
			s += ": " + e
		}
		return s
	}
	return ""
}
