package adminrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode"
)

// Service is the transport service name admin requests travel under.
const Service = "raftkit.admin"

// Limits on what a request or response may carry. Admin traffic is small;
// the limits bound what a malformed or hostile message can make a server
// allocate.
const (
	// MaxMessageBytes bounds an encoded request or response.
	MaxMessageBytes = 1 << 20
	// MaxPeers bounds the peers, IDs and peer states of one message.
	MaxPeers = 1000
	// MaxAddrLen bounds one peer address.
	MaxAddrLen = 256
	// MaxTimeout bounds Request.TimeoutMillis.
	MaxTimeout = 24 * time.Hour
	// DefaultTimeout applies when Request.TimeoutMillis is 0.
	DefaultTimeout = 30 * time.Second
)

// Op names an admin operation.
type Op string

// The operations. Membership changes, leadership transfer, get-leader and
// list-peers are meant for the leader; snapshot and reset-peers act on the
// member that receives them.
const (
	OpAddPeer        Op = "add-peer"
	OpRemovePeer     Op = "remove-peer"
	OpChangePeers    Op = "change-peers"
	OpAddLearners    Op = "add-learners"
	OpRemoveLearners Op = "remove-learners"
	OpPromoteLearner Op = "promote-learner"
	OpTransferLeader Op = "transfer-leader"
	OpSnapshot       Op = "snapshot"
	OpResetPeers     Op = "reset-peers"
	OpListPeers      Op = "list-peers"
	OpGetLeader      Op = "get-leader"
)

// Peer is a group member: its node ID and raft address.
type Peer struct {
	ID   uint64 `json:"id"`
	Addr string `json:"addr"`
}

// String formats p as ID@ADDR, the form the command line takes.
func (p Peer) String() string { return fmt.Sprintf("%d@%s", p.ID, p.Addr) }

// Role is a member's part in the configuration.
type Role string

// The roles a PeerState may carry.
const (
	RoleVoter   Role = "voter"
	RoleLearner Role = "learner"
)

// PeerState is one member as the answering node knows it. Alive and Match
// are meaningful only when the leader answered: Alive says it heard from
// the member recently, Match is the highest log index known replicated
// there.
type PeerState struct {
	ID    uint64 `json:"id"`
	Addr  string `json:"addr"`
	Role  Role   `json:"role"`
	Alive bool   `json:"alive"`
	Match uint64 `json:"match"`
}

// Request is one admin operation. Which of Peers and IDs an Op takes is
// fixed (see the Op constants' users in Admin); the rest must be empty.
type Request struct {
	Op    Op       `json:"op"`
	Peers []Peer   `json:"peers,omitempty"`
	IDs   []uint64 `json:"ids,omitempty"`
	// TimeoutMillis bounds the operation on the server; 0 selects
	// DefaultTimeout.
	TimeoutMillis int64 `json:"timeout_ms,omitempty"`
}

// Timeout is the request's deadline as a duration, DefaultTimeout for 0.
func (r *Request) Timeout() time.Duration {
	if r.TimeoutMillis == 0 {
		return DefaultTimeout
	}
	return time.Duration(r.TimeoutMillis) * time.Millisecond
}

// Response is the outcome of a successful operation; failures travel as
// transport errors instead. Leader and Peers are the membership as the
// answering node knows it after the operation (Leader.ID 0: none known).
type Response struct {
	OK            bool        `json:"ok"`
	Leader        Peer        `json:"leader"`
	Peers         []PeerState `json:"peers,omitempty"`
	SnapshotIndex uint64      `json:"snapshot_index,omitempty"`
	SnapshotTerm  uint64      `json:"snapshot_term,omitempty"`
	Message       string      `json:"message,omitempty"`
}

// ErrBadRequest matches every error that rejects a malformed request;
// such errors travel to remote callers with raftkit's invalid-argument
// code. ErrBadResponse matches every error that rejects a malformed
// response.
var (
	ErrBadRequest  = errors.New("adminrpc: bad request")
	ErrBadResponse = errors.New("adminrpc: bad response")
)

// Wire codes this package's errors carry. They are raftkit's
// CodeNotLeader, CodeUnknownGroup, CodeInvalidArgument and CodeTryAgain
// (package raftkit imports this one, so the values are repeated; cli's
// tests pin them).
const (
	codeNotLeader       uint16 = 1
	codeUnknownGroup    uint16 = 9
	codeInvalidArgument uint16 = 10
	codeTryAgain        uint16 = 11
)

// protoError is a rejected message; it unwraps to its sentinel and keeps
// raftkit's invalid-argument code across the transport.
type protoError struct {
	sentinel error
	msg      string
}

func (e *protoError) Error() string { return e.sentinel.Error() + ": " + e.msg }
func (e *protoError) Unwrap() error { return e.sentinel }

// WireError implements transport.WireError.
func (e *protoError) WireError() (uint16, string) { return codeInvalidArgument, "" }

func badRequest(format string, args ...any) error {
	return &protoError{sentinel: ErrBadRequest, msg: fmt.Sprintf(format, args...)}
}

func badResponse(format string, args ...any) error {
	return &protoError{sentinel: ErrBadResponse, msg: fmt.Sprintf(format, args...)}
}

// EncodeRequest validates r and encodes it. Safe for concurrent use.
func EncodeRequest(r *Request) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return encode(r, badRequest)
}

// DecodeRequest decodes and validates a request. Every failure matches
// ErrBadRequest. Safe for concurrent use.
func DecodeRequest(data []byte) (*Request, error) {
	var r Request
	if err := decode(data, &r, badRequest); err != nil {
		return nil, err
	}
	// "[]" and an absent list mean the same; keep one form.
	if len(r.Peers) == 0 {
		r.Peers = nil
	}
	if len(r.IDs) == 0 {
		r.IDs = nil
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// EncodeResponse encodes r. It does not validate: a server reports what it
// knows, and DecodeResponse judges it. Safe for concurrent use.
func EncodeResponse(r *Response) ([]byte, error) { return encode(r, badResponse) }

// DecodeResponse decodes and validates a response. Every failure matches
// ErrBadResponse. Safe for concurrent use.
func DecodeResponse(data []byte) (*Response, error) {
	var r Response
	if err := decode(data, &r, badResponse); err != nil {
		return nil, err
	}
	if len(r.Peers) == 0 {
		r.Peers = nil
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

func encode(v any, fail func(string, ...any) error) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fail("encoding: %v", err)
	}
	if len(b) > MaxMessageBytes {
		return nil, fail("%d bytes encoded, more than %d", len(b), MaxMessageBytes)
	}
	return b, nil
}

// decode reads exactly one JSON object, refusing unknown fields: an admin
// option a server does not understand must fail, not be ignored.
func decode(data []byte, v any, fail func(string, ...any) error) error {
	if len(data) > MaxMessageBytes {
		return fail("%d bytes, more than %d", len(data), MaxMessageBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail("decoding: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail("data after the JSON object")
	}
	return nil
}

// arity says how many Peers or IDs an operation takes.
type arity uint8

const (
	none      arity = iota
	one             // exactly one
	optional        // zero or one
	oneOrMore       // at least one
)

// opArgs is what each operation takes: Peers, then IDs.
var opArgs = map[Op][2]arity{
	OpAddPeer:        {one, none},
	OpRemovePeer:     {none, one},
	OpChangePeers:    {oneOrMore, none},
	OpAddLearners:    {oneOrMore, none},
	OpRemoveLearners: {none, oneOrMore},
	OpPromoteLearner: {none, one},
	OpTransferLeader: {none, optional}, // no ID: the best other voter
	OpSnapshot:       {none, none},
	OpResetPeers:     {oneOrMore, none},
	OpListPeers:      {none, none},
	OpGetLeader:      {none, none},
}

// Validate checks r against its Op; errors match ErrBadRequest.
func (r *Request) Validate() error {
	args, ok := opArgs[r.Op]
	if !ok {
		return badRequest("unknown op %q", r.Op)
	}
	if err := checkCount(r.Op, "peers", len(r.Peers), args[0]); err != nil {
		return err
	}
	if err := checkCount(r.Op, "IDs", len(r.IDs), args[1]); err != nil {
		return err
	}
	if r.TimeoutMillis < 0 || r.TimeoutMillis > MaxTimeout.Milliseconds() {
		return badRequest("timeout %dms out of range 0..%d", r.TimeoutMillis, MaxTimeout.Milliseconds())
	}
	if err := checkPeers(r.Peers); err != nil {
		return badRequest("%s: %v", r.Op, err)
	}
	seen := make(map[uint64]bool, len(r.IDs))
	for _, id := range r.IDs {
		if id == 0 {
			return badRequest("%s: node ID 0", r.Op)
		}
		if seen[id] {
			return badRequest("%s: node ID %d listed twice", r.Op, id)
		}
		seen[id] = true
	}
	return nil
}

func checkCount(op Op, what string, n int, want arity) error {
	if n > MaxPeers {
		return badRequest("%s: %d %s, more than %d", op, n, what, MaxPeers)
	}
	switch {
	case want == none && n != 0:
		return badRequest("%s takes no %s, got %d", op, what, n)
	case want == one && n != 1:
		return badRequest("%s takes exactly one of its %s, got %d", op, what, n)
	case want == optional && n > 1:
		return badRequest("%s takes at most one of its %s, got %d", op, what, n)
	case want == oneOrMore && n == 0:
		return badRequest("%s needs at least one of its %s", op, what)
	}
	return nil
}

// checkPeers refuses zero IDs, missing or malformed addresses, and an ID
// or address named twice.
func checkPeers(ps []Peer) error {
	ids := make(map[uint64]bool, len(ps))
	addrs := make(map[string]bool, len(ps))
	for _, p := range ps {
		if p.ID == 0 {
			return fmt.Errorf("peer %q has node ID 0", p.Addr)
		}
		if err := checkAddr(p.Addr); err != nil {
			return fmt.Errorf("peer %d: %w", p.ID, err)
		}
		if ids[p.ID] {
			return fmt.Errorf("node ID %d listed twice", p.ID)
		}
		if addrs[p.Addr] {
			return fmt.Errorf("address %q listed twice", p.Addr)
		}
		ids[p.ID], addrs[p.Addr] = true, true
	}
	return nil
}

// checkAddr accepts any non-empty printable address without spaces; the
// transport, not this package, decides what an address means.
func checkAddr(a string) error {
	if a == "" {
		return errors.New("empty address")
	}
	if len(a) > MaxAddrLen {
		return fmt.Errorf("address of %d bytes, more than %d", len(a), MaxAddrLen)
	}
	for _, c := range a {
		if c == unicode.ReplacementChar || unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return fmt.Errorf("address %q has a space or unprintable character", a)
		}
	}
	return nil
}

// Validate checks a response's peers; errors match ErrBadResponse.
func (r *Response) Validate() error {
	if len(r.Peers) > MaxPeers {
		return badResponse("%d peers, more than %d", len(r.Peers), MaxPeers)
	}
	if r.Leader.ID == 0 && r.Leader.Addr != "" {
		return badResponse("leader %q without a node ID", r.Leader.Addr)
	}
	if len(r.Leader.Addr) > MaxAddrLen {
		return badResponse("leader address of %d bytes, more than %d", len(r.Leader.Addr), MaxAddrLen)
	}
	seen := make(map[uint64]bool, len(r.Peers))
	for _, p := range r.Peers {
		switch {
		case p.ID == 0:
			return badResponse("peer %q has node ID 0", p.Addr)
		case seen[p.ID]:
			return badResponse("node ID %d listed twice", p.ID)
		case p.Role != RoleVoter && p.Role != RoleLearner:
			return badResponse("peer %d has role %q, want voter or learner", p.ID, p.Role)
		case len(p.Addr) > MaxAddrLen:
			return badResponse("peer %d: address of %d bytes, more than %d", p.ID, len(p.Addr), MaxAddrLen)
		}
		seen[p.ID] = true
	}
	return nil
}
