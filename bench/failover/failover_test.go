package failover

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/bench/systems"
)

type fakeNode struct {
	leader bool
	err    error
	got    atomic.Int32 // payload size of the last proposal
}

func (n *fakeNode) Propose(_ context.Context, g int, p []byte) error {
	n.got.Store(int32(len(p)))
	if !n.leader {
		return systems.ErrNotLeader
	}
	return n.err
}
func (n *fakeNode) IsLeader(int) bool { return n.leader }
func (n *fakeNode) Close() error      { return nil }

func TestHandler(t *testing.T) {
	for _, c := range []struct {
		name         string
		node         *fakeNode
		leader, post int
	}{
		{"leader", &fakeNode{leader: true}, 200, 200},
		{"follower", &fakeNode{}, 409, 409},
		{"failing", &fakeNode{leader: true, err: errors.New("disk")}, 200, 500},
	} {
		srv := httptest.NewServer(Handler(c.node))
		resp, err := http.Get(srv.URL + "/leader")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.leader {
			t.Errorf("%s: GET /leader = %d, want %d", c.name, resp.StatusCode, c.leader)
		}
		resp, err = http.Post(srv.URL+"/write", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.post {
			t.Errorf("%s: POST /write = %d, want %d", c.name, resp.StatusCode, c.post)
		}
		if c.node.got.Load() != PayloadSize {
			t.Errorf("%s: proposed %d bytes", c.name, c.node.got.Load())
		}
		srv.Close()
	}
}

func TestReplicaSpecArgsRoundTrip(t *testing.T) {
	want := ReplicaSpec{System: "hashicorp", ID: 2, Addrs: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"},
		Dirs: []string{"/a", "/b", "/c"}, Ctl: "127.0.0.1:4", ElectionTimeout: time.Second, Heartbeat: 100 * time.Millisecond}
	var got ReplicaSpec
	fs := flag.NewFlagSet("replica", flag.ContinueOnError)
	got.Flags(fs)
	if err := fs.Parse(want.Args()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip: got %+v, want %+v", got, want)
	}
}

// TestWriteUntil checks the writer loop against control servers: a
// follower that refuses and a replica that accepts only after a while,
// holding each request as a replica in an election might.
func TestWriteUntil(t *testing.T) {
	follower := httptest.NewServer(Handler(&fakeNode{}))
	defer follower.Close()
	ready := time.Now().Add(100 * time.Millisecond)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		early := time.Now().Before(ready)
		time.Sleep(200 * time.Millisecond)
		if early {
			http.Error(w, "no leader yet", http.StatusInternalServerError)
		}
	}))
	defer slow.Close()
	c := &cluster{
		ctl:    []string{strings.TrimPrefix(follower.URL, "http://"), strings.TrimPrefix(slow.URL, "http://")},
		client: &http.Client{Transport: &http.Transport{}},
		killed: []bool{false, false}, exited: []chan struct{}{make(chan struct{}), make(chan struct{})},
	}
	defer c.client.CloseIdleConnections()
	t0 := time.Now()
	i, at, err := c.writeUntil(context.Background(), []int{0, 1}, 5*time.Second)
	if err != nil || i != 1 {
		t.Fatalf("writeUntil = %d, %v", i, err)
	}
	// Overlapping attempts: the first success is an attempt that arrived
	// within a writer period of the replica becoming ready (one request
	// time, 200ms, later); a loop waiting for each answer would only have
	// sent it after the attempt in flight at ready failed, 300ms later.
	if d := at.Sub(ready); d < 200*time.Millisecond || d > 280*time.Millisecond {
		t.Errorf("success %v after ready (started %v before)", d, ready.Sub(t0))
	}
	_, _, err = c.writeUntil(context.Background(), []int{0}, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("writeUntil to a follower only = %v, want a timeout naming the 409", err)
	}
}
