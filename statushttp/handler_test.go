package statushttp

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/raftkit/raftkit/examples/counter"
	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/transport/tcp"
)

// cluster is three counter servers on loopback TCP.
type cluster struct {
	addrs   []string
	servers []*counter.Server
	caller  *tcp.Client
	client  *counter.Client
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{caller: tcp.NewClient(tcp.ClientOptions{DialTimeout: time.Second})}
	t.Cleanup(func() { c.caller.Close() })
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.addrs = append(c.addrs, ln.Addr().String())
		ln.Close()
	}
	for _, a := range c.addrs {
		srv, err := counter.StartServer(counter.ServerConfig{DataDir: t.TempDir(), Addr: a, Peers: c.addrs,
			TickInterval: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		c.servers = append(c.servers, srv)
		t.Cleanup(func() { srv.Close() })
	}
	c.client = counter.NewClient(c.caller, c.addrs, "")
	c.incr(t)
	return c
}

func (c *cluster) incr(t *testing.T) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := c.client.IncrementAndGet(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func getReport(t *testing.T, url string) Report {
	t.Helper()
	resp, err := http.Get(url + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("/status: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var rep Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestStatusReportsEveryMember(t *testing.T) {
	testutil.CheckLeaks(t)
	c := startCluster(t)
	srv := httptest.NewServer(New(c.servers[0].Host(), Options{Caller: c.caller}))
	defer srv.Close()

	var rep Report
	testutil.WaitFor(t, 10*time.Second, "every member's status with a leader and a commit index", func() bool {
		rep = getReport(t, srv.URL)
		if len(rep.Groups) != 1 || len(rep.Groups[0].Members) != 3 {
			return false
		}
		leaders := 0
		for _, m := range rep.Groups[0].Members {
			// A follower learns the commit index of the increment
			// startCluster made with the next message from the leader.
			if m.Status == nil || m.Status.CommitIndex == 0 {
				return false
			}
			if m.Status.Role == "Leader" {
				leaders++
			}
		}
		return leaders == 1
	})
	if rep.Host != c.addrs[0] || rep.RefreshMS != 500 {
		t.Fatalf("host %q refresh %d", rep.Host, rep.RefreshMS)
	}
	for _, m := range rep.Groups[0].Members {
		if m.Addr != c.addrs[m.ID-1] || m.Role != "voter" || m.Status.CommitIndex == 0 {
			t.Fatalf("member %+v", m)
		}
	}
}

func TestDeadPeerIsBoundedAndReported(t *testing.T) {
	testutil.CheckLeaks(t)
	c := startCluster(t)
	if err := c.servers[2].Close(); err != nil {
		t.Fatal(err)
	}
	h := New(c.servers[0].Host(), Options{Caller: c.caller, PeerTimeout: 200 * time.Millisecond})
	srv := httptest.NewServer(h)
	defer srv.Close()
	start := time.Now()
	rep := getReport(t, srv.URL)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("/status took %v with a dead peer", took)
	}
	dead := rep.Groups[0].Members[2]
	if dead.Status != nil || dead.Error == "" {
		t.Fatalf("dead member reported as %+v", dead)
	}
}

func TestRoutes(t *testing.T) {
	testutil.CheckLeaks(t)
	c := startCluster(t)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "raftkit_term 1\n") })
	srv := httptest.NewServer(New(c.servers[0].Host(), Options{Metrics: metrics}))
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		code         int
		has          string
	}{
		{"GET", "/", 200, "raftkit status"},
		{"GET", "/metrics", 200, "raftkit_term 1"},
		{"POST", "/status", 405, "method not allowed"},
		{"DELETE", "/", 405, "method not allowed"},
		{"GET", "/nope", 404, ""},
		{"GET", "/status", 200, "not asked (no caller configured)"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.has) {
			t.Errorf("%s %s: %d %q", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	srv2 := httptest.NewServer(New(c.servers[0].Host(), Options{}))
	defer srv2.Close()
	if resp, err := http.Get(srv2.URL + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("metrics without a handler: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
}
