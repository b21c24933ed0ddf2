package cli

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftkit/raftkit"
)

func TestParsePeer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want raftkit.Peer
		err  string
	}{
		{"4@127.0.0.1:8084", raftkit.Peer{ID: 4, Addr: "127.0.0.1:8084"}, ""},
		{" 12@host.example:1 ", raftkit.Peer{ID: 12, Addr: "host.example:1"}, ""},
		{"1@[::1]:8081", raftkit.Peer{ID: 1, Addr: "[::1]:8081"}, ""},
		{"127.0.0.1:8084", raftkit.Peer{}, "want ID@HOST:PORT"},
		{"@127.0.0.1:8084", raftkit.Peer{}, "missing node ID"},
		{"0@127.0.0.1:8084", raftkit.Peer{}, "node ID 0 is reserved"},
		{"x@127.0.0.1:8084", raftkit.Peer{}, "not a positive decimal"},
		{"-1@127.0.0.1:8084", raftkit.Peer{}, "not a positive decimal"},
		{"4@", raftkit.Peer{}, "want HOST:PORT"},
		{"4@127.0.0.1", raftkit.Peer{}, "want HOST:PORT"},
		{"4@:8084", raftkit.Peer{}, "no host"},
		{"4@h:port", raftkit.Peer{}, "port must be a number"},
		{"4@h:0", raftkit.Peer{}, "port must be a number"},
		{"4@h:65536", raftkit.Peer{}, "port must be a number"},
	} {
		got, err := ParsePeer(tc.in)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("ParsePeer(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, raftkit.ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParsePeer(%q): error %v, want ErrInvalid mentioning %q", tc.in, err, tc.err)
		}
	}
}

func TestParseLists(t *testing.T) {
	ps, err := ParsePeers("1@a:1, 2@b:2")
	if err != nil || !reflect.DeepEqual(ps, []raftkit.Peer{{ID: 1, Addr: "a:1"}, {ID: 2, Addr: "b:2"}}) {
		t.Fatalf("%v %v", ps, err)
	}
	ids, err := ParseIDs("4, 5")
	if err != nil || !reflect.DeepEqual(ids, []uint64{4, 5}) {
		t.Fatalf("%v %v", ids, err)
	}
	for _, tc := range []struct {
		parse func(string) error
		in    string
		err   string
	}{
		{peersErr, "", "empty entry"},
		{peersErr, "1@a:1,,2@b:2", "empty entry"},
		{peersErr, "1@a:1,1@b:2", "node ID 1 listed twice"},
		{peersErr, "1@a:1,2@a:1", "address a:1 listed twice"},
		{peersErr, "1@a:1,b:2", "want ID@HOST:PORT"},
		{idsErr, "", "empty entry"},
		{idsErr, "4,4", "listed twice"},
		{idsErr, "4,x", "not a positive decimal"},
	} {
		err := tc.parse(tc.in)
		if !errors.Is(err, raftkit.ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v, want ErrInvalid mentioning %q", tc.in, err, tc.err)
		}
	}
}

func peersErr(s string) error { _, err := ParsePeers(s); return err }
func idsErr(s string) error   { _, err := ParseIDs(s); return err }

// TestTimeoutMillis: the server gets the time left less a margin, or its
// default without a deadline.
func TestTimeoutMillis(t *testing.T) {
	if ms := timeoutMillis(context.Background()); ms != 0 {
		t.Fatalf("no deadline: %d", ms)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if ms := timeoutMillis(ctx); ms > 19000 || ms <= 0 {
		t.Fatalf("20s deadline: %dms, want at most 19s", ms)
	}
	past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	if ms := timeoutMillis(past); ms != 1 {
		t.Fatalf("passed deadline: %dms, want 1", ms)
	}
}
