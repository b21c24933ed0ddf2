// Package statushttp serves a host's live status over HTTP: /status (JSON
// of every group on the host, with each member's status fetched from its
// own host), /metrics (the handler the caller passes, a Prometheus one for
// instance) and a status page at / that polls /status and draws, for each
// group, the members with role, term, commit and apply index, the log of
// each member as a bar (compacted, applied, committed, not yet committed,
// as in the replication figures of the Counter walk-through), and the
// leader's view of each follower: match, next, inflight requests and lag.
//
// It owns the HTTP routes and the embedded page (no external assets); it
// never listens by itself (the caller serves the handler) and never
// changes a group.
package statushttp
