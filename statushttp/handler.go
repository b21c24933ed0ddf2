package statushttp

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/client"
)

//go:embed page.html
var page []byte

// Options configure the handler. Zero values mean the defaults.
type Options struct {
	// Caller asks other members' hosts for their status (StatusService);
	// nil: /status shows this host's members only.
	Caller client.Caller
	// PeerTimeout bounds the peers' answers; default 500ms. Every member
	// of every group is asked in parallel (at most MaxPeerCalls at once)
	// under this one deadline, so dead or stalled peers delay /status by
	// at most this however many groups the host runs.
	PeerTimeout time.Duration
	// MaxPeerCalls bounds the status calls in flight for one /status;
	// default 64. Calls that cannot start before PeerTimeout report the
	// deadline as their member's error.
	MaxPeerCalls int
	// Metrics, when set, serves /metrics (a promhttp handler, say).
	Metrics http.Handler
	// Refresh is how often the page polls /status; default 500ms.
	Refresh time.Duration
	// Logger receives request failures; nil discards.
	Logger *slog.Logger
}

// Member is one member of a group as /status reports it: its status, or
// why it could not be had.
type Member struct {
	ID     uint64              `json:"id"`
	Addr   string              `json:"addr"`
	Role   string              `json:"role"` // voter or learner, in the configuration
	Status *raftkit.StatusJSON `json:"status,omitempty"`
	Error  string              `json:"error,omitempty"`
}

// Group is one group on the host with every member's status.
type Group struct {
	GroupID uint64   `json:"group_id,string"` // a string: IDs exceed JavaScript's exact integers
	Members []Member `json:"members"`
}

// Report is the /status document.
type Report struct {
	Host      string    `json:"host"`
	Time      time.Time `json:"time"`
	RefreshMS int64     `json:"refresh_ms"`
	Groups    []Group   `json:"groups"`
}

type handler struct {
	host *raftkit.NodeHost
	o    Options
}

// New returns the handler of /status, /metrics and the status page (/)
// for host.
//
// Concurrency: the handler is safe for concurrent use.
func New(host *raftkit.NodeHost, o Options) http.Handler {
	if o.PeerTimeout <= 0 {
		o.PeerTimeout = 500 * time.Millisecond
	}
	if o.MaxPeerCalls <= 0 {
		o.MaxPeerCalls = 64
	}
	if o.Refresh <= 0 {
		o.Refresh = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{host: host, o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("/status", h.status)
	mux.HandleFunc("/metrics", h.metrics)
	mux.HandleFunc("/{$}", h.page)
	return mux
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(page)
}

func (h *handler) metrics(w http.ResponseWriter, r *http.Request) {
	if h.o.Metrics == nil {
		http.Error(w, "metrics are not enabled on this host", http.StatusNotFound)
		return
	}
	h.o.Metrics.ServeHTTP(w, r)
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	rep := h.report(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		h.o.Logger.Debug("statushttp: writing /status", "err", err)
	}
}

// report gathers the /status document: every group of the host, each
// member's status from its own host (this one's locally). The peers of all
// groups are asked at once under one PeerTimeout deadline, so the time it
// takes does not grow with the number of groups.
func (h *handler) report(ctx context.Context) Report {
	rep := Report{Host: h.host.Addr(), Time: time.Now().UTC(), RefreshMS: h.o.Refresh.Milliseconds()}
	nodes := h.host.Nodes()
	slices.SortFunc(nodes, func(a, b *raftkit.Node) int { return cmp.Compare(a.GroupID(), b.GroupID()) })
	ctx, cancel := context.WithTimeout(ctx, h.o.PeerTimeout)
	defer cancel()
	f := &fanout{h: h, ctx: ctx, slots: make(chan struct{}, h.o.MaxPeerCalls)}
	rep.Groups = make([]Group, len(nodes))
	for i, n := range nodes {
		rep.Groups[i] = f.group(n)
	}
	f.wg.Wait() // the groups' members are filled in place by the calls
	return rep
}

// fanout is one /status's calls to peers: every call shares ctx (one
// deadline) and takes one of the slots while it runs.
type fanout struct {
	h     *handler
	ctx   context.Context
	slots chan struct{}
	wg    sync.WaitGroup
}

// group lists n's members with this one's status; it starts a call for
// every other member that fills its Member once it answers.
func (f *fanout) group(n *raftkit.Node) Group {
	st := n.Status()
	g := Group{GroupID: st.GroupID}
	add := func(id uint64, role string) {
		if !slices.ContainsFunc(g.Members, func(m Member) bool { return m.ID == id }) {
			g.Members = append(g.Members, Member{ID: id, Addr: n.PeerAddr(id), Role: role})
		}
	}
	for _, id := range st.Voters {
		add(id, "voter")
	}
	for _, id := range st.OutgoingVoters {
		add(id, "voter")
	}
	for _, id := range st.Learners {
		add(id, "learner")
	}
	add(st.NodeID, "none") // a member outside its configuration still shows itself
	for i := range g.Members {
		m := &g.Members[i]
		if m.ID == st.NodeID {
			j := st.JSON()
			m.Status = &j
			if m.Addr == "" {
				m.Addr = f.h.host.Addr()
			}
			continue
		}
		if f.h.o.Caller == nil || m.Addr == "" {
			m.Error = "no address known"
			if f.h.o.Caller == nil {
				m.Error = "not asked (no caller configured)"
			}
			continue
		}
		f.wg.Go(func() { f.ask(st.GroupID, m) })
	}
	return g
}

// ask fills m with its host's answer to StatusService, or the error.
func (f *fanout) ask(group uint64, m *Member) {
	select {
	case f.slots <- struct{}{}:
		defer func() { <-f.slots }()
	case <-f.ctx.Done():
		m.Error = fmt.Sprintf("not asked: %v", f.ctx.Err())
		return
	}
	resp, err := f.h.o.Caller.Call(f.ctx, m.Addr, raftkit.StatusService, group, nil)
	if err != nil {
		m.Error = err.Error()
		return
	}
	var st raftkit.StatusJSON
	if err := json.Unmarshal(resp, &st); err != nil {
		m.Error = fmt.Sprintf("malformed status: %v", err)
		return
	}
	m.Status = &st
}
