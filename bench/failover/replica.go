package failover

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/raftkit/raftkit/bench/harness"
	"github.com/raftkit/raftkit/bench/systems"
)

// PayloadSize is the size of every /write proposal.
const PayloadSize = 16

// ReplicaSpec is one replica process of a failover cluster. It travels as
// command-line flags: Flags and Args are each other's inverse.
type ReplicaSpec struct {
	System string
	ID     int      // 0, 1 or 2: index into Addrs and Dirs
	Addrs  []string // every replica's raft address
	Dirs   []string // every replica's data directory (only Dirs[ID] is used)
	Ctl    string   // this replica's control address (loopback host:port)

	ElectionTimeout, Heartbeat time.Duration
}

// Flags registers the spec's fields on fs. Addresses and directories are
// comma-separated lists.
func (s *ReplicaSpec) Flags(fs *flag.FlagSet) {
	fs.StringVar(&s.System, "system", "raftkit", "system to run")
	fs.IntVar(&s.ID, "id", 0, "replica index (0-2)")
	fs.Func("addrs", "comma-separated raft addresses of all replicas", listInto(&s.Addrs))
	fs.Func("dirs", "comma-separated data directories of all replicas", listInto(&s.Dirs))
	fs.StringVar(&s.Ctl, "ctl", "", "control address (loopback host:port) for /leader and /write")
	fs.DurationVar(&s.ElectionTimeout, "election-timeout", harness.DefaultElectionTimeout, "base election timeout")
	fs.DurationVar(&s.Heartbeat, "heartbeat", harness.DefaultHeartbeat, "leader heartbeat interval")
}

func listInto(dst *[]string) func(string) error {
	return func(v string) error {
		*dst = strings.Split(v, ",")
		return nil
	}
}

// Args renders the spec as the flags Flags parses.
func (s ReplicaSpec) Args() []string {
	return []string{
		"-system", s.System, "-id", strconv.Itoa(s.ID),
		"-addrs", strings.Join(s.Addrs, ","), "-dirs", strings.Join(s.Dirs, ","),
		"-ctl", s.Ctl,
		"-election-timeout", s.ElectionTimeout.String(), "-heartbeat", s.Heartbeat.String(),
	}
}

func (s ReplicaSpec) validate() error {
	switch {
	case len(s.Addrs) != 3 || len(s.Dirs) != 3:
		return fmt.Errorf("replica: need 3 addrs and 3 dirs, got %d and %d", len(s.Addrs), len(s.Dirs))
	case s.ID < 0 || s.ID >= 3:
		return fmt.Errorf("replica: id %d out of range", s.ID)
	case s.Ctl == "":
		return errors.New("replica: -ctl is required")
	}
	return nil
}

// Serve runs replica s.ID of sys with one group and serves the control
// protocol on s.Ctl until ctx ends, then closes both.
func Serve(ctx context.Context, sys systems.System, s ReplicaSpec) error {
	if err := s.validate(); err != nil {
		return err
	}
	node, err := sys.StartNode(systems.Config{
		Dirs: s.Dirs, Addrs: s.Addrs, Groups: 1,
		ElectionTimeout: s.ElectionTimeout, HeartbeatInterval: s.Heartbeat,
		MaxPayload: PayloadSize,
	}, s.ID)
	if err != nil {
		return fmt.Errorf("replica %d: %w", s.ID, err)
	}
	defer node.Close()
	ln, err := net.Listen("tcp", s.Ctl)
	if err != nil {
		return fmt.Errorf("replica %d: control listener: %w", s.ID, err)
	}
	srv := &http.Server{Handler: Handler(node), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("replica %d: control server: %w", s.ID, err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}

// Handler serves the control protocol for node, group 0:
//
//	GET  /leader  200 if node leads the group, else 409
//	POST /write   proposes a 16-byte payload: 200 once committed, 409 if
//	              node does not lead, 500 (with the error) otherwise
func Handler(node systems.Node) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /leader", func(w http.ResponseWriter, r *http.Request) {
		if node.IsLeader(0) {
			fmt.Fprintln(w, "leader")
			return
		}
		http.Error(w, "not leader", http.StatusConflict)
	})
	mux.HandleFunc("POST /write", func(w http.ResponseWriter, r *http.Request) {
		// The client gives up after 500ms; bound the proposal anyway so a
		// stuck system does not pile up handlers.
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		err := node.Propose(ctx, 0, make([]byte, PayloadSize))
		switch {
		case err == nil:
			fmt.Fprintln(w, "ok")
		case errors.Is(err, systems.ErrNotLeader):
			http.Error(w, "not leader", http.StatusConflict)
		default:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	return mux
}
