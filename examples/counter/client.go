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

// Get returns the counter's value, linearizably (GetWith ReadSafe): it
// reflects every increment acknowledged before Get began.
func (c *Client) Get(ctx context.Context) (int64, error) { return c.GetWith(ctx, raftkit.ReadSafe) }

// GetWith returns the counter's value read at the leader in mode:
// ReadSafe confirms leadership with a heartbeat round, ReadLease trusts
// the leader's lease (linearizable while clocks drift less than the lease
// margin), ReadStale returns what the leader has applied without either
// (it may miss increments acknowledged just before).
func (c *Client) GetWith(ctx context.Context, mode raftkit.ReadMode) (int64, error) {
	resp, err := c.rt.Invoke(ctx, c.group, ServiceGet, encodeReadMode(mode), true)
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
