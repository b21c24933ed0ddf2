// Package client calls application services of a raft group from outside
// it: a RouteTable finds and caches each group's leader, follows the
// not-leader hints the servers return, and retries transient failures with
// backoff until the caller's context ends.
//
// It owns routing and retry policy only. It never opens connections itself
// (a Caller such as tcp.Client does) and never retries an error that may
// mean the request took effect unless the caller marks the request
// idempotent.
package client
