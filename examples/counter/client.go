package counter

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/client"
)

// Client talks to a counter group through a route table that finds and
// caches the leader.
//
// Concurrency: safe for concurrent use.
type Client struct {
	caller client.Caller
	rt     *client.RouteTable
	group  uint64
}

// NewClient returns a client of the named group served by peers, sending
// through caller (a *tcp.Client, or an in-process network in tests).
func NewClient(caller client.Caller, peers []string, group string) *Client {
	if group == "" {
		group = DefaultGroup
	}
	gid := raftkit.GroupIDFromName(group)
	rt := client.New(caller, client.Options{})
	rt.SetPeers(gid, peers)
	return &Client{caller: caller, rt: rt, group: gid}
}

// IncrementAndGet adds delta and returns the new value. It is not retried
// after an error that leaves its outcome unknown (the increment may have
// applied); such errors are returned.
func (c *Client) IncrementAndGet(ctx context.Context, delta int64) (int64, error) {
	resp, err := c.rt.Invoke(ctx, c.group, ServiceIncrement, encodeValue(delta), false)
	if err != nil {
		return 0, err
	}
	return decodeValue(resp)
}

// Get returns the counter's value, linearizably: the read is ordered in the
// log after every increment acknowledged before it began.
func (c *Client) Get(ctx context.Context) (int64, error) {
	resp, err := c.rt.Invoke(ctx, c.group, ServiceGet, nil, true)
	if err != nil {
		return 0, err
	}
	return decodeValue(resp)
}

// Leader is the leader the route table last found, or "".
func (c *Client) Leader() string { return c.rt.Leader(c.group) }

// Status asks the server at addr for its member's status.
func (c *Client) Status(ctx context.Context, addr string) (raftkit.StatusJSON, error) {
	var st raftkit.StatusJSON
	resp, err := c.caller.Call(ctx, addr, raftkit.StatusService, c.group, nil)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(resp, &st); err != nil {
		return st, fmt.Errorf("counter: status from %s: %w", addr, err)
	}
	return st, nil
}
