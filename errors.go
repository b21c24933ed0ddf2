package raftkit

import (
	"errors"
	"fmt"
)

// Code classifies a raftkit error, in the spirit of SOFAJRaft's RaftError.
// Codes are stable: they travel on the wire to remote callers.
type Code uint16

const (
	// CodeUnknown: an error without a raftkit code.
	CodeUnknown Code = 0
	// CodeNotLeader: this node does not lead the group; Error.Leader names
	// the leader's address when known. Retry there.
	CodeNotLeader Code = 1
	// CodeBusy: a budget (in-memory log, apply queue, proposal queue) is
	// exhausted. Nothing was accepted; retry after a backoff.
	CodeBusy Code = 2
	// CodeTimeout: the context's deadline passed before the outcome was
	// known. The operation may still take effect.
	CodeTimeout Code = 3
	// CodeShuttingDown: the node or host is shutting down.
	CodeShuttingDown Code = 4
	// CodeStaleTerm: the task's ExpectedTerm differs from the leader's term.
	CodeStaleTerm Code = 5
	// CodeLeaderChanged: the entry was overwritten by another leader's log
	// (it will never be applied), or leadership moved before it was logged.
	CodeLeaderChanged Code = 6
	// CodeStateMachine: the state machine failed; the group is in an error
	// state and accepts no more tasks.
	CodeStateMachine Code = 7
	// CodeStorage: the log or meta storage failed; the group is in an error
	// state and accepts no more tasks.
	CodeStorage Code = 8
	// CodeUnknownGroup: the host serves no group with that ID.
	CodeUnknownGroup Code = 9
	// CodeInvalidArgument: a request, flag or option is malformed.
	CodeInvalidArgument Code = 10
	// CodeTryAgain: a transient condition (no leader known yet, election
	// under way); retry after a backoff.
	CodeTryAgain Code = 11
)

var codeNames = [...]string{
	"unknown", "not leader", "busy", "timeout", "shutting down", "stale term",
	"leader changed", "state machine error", "storage error", "unknown group",
	"invalid argument", "try again",
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// Error is raftkit's error type. errors.Is(err, ErrBusy) and the other
// sentinels below match any *Error with the same Code, so callers can test
// the class of an error whatever its details.
type Error struct {
	Code Code
	// Leader is the address of the group's leader, when known, for
	// CodeNotLeader.
	Leader string
	// Msg details the error; Err is its cause, if any.
	Msg string
	Err error
}

func (e *Error) Error() string {
	s := "raftkit: " + e.Code.String()
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Leader != "" {
		s += " (leader " + e.Leader + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches another *Error with the same Code, so the package's sentinels
// classify errors.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Msg == "" && t.Leader == "" && t.Err == nil
}

// WireError lets the error keep its code and leader hint across the
// transport to a remote caller (see transport.WireError).
func (e *Error) WireError() (code uint16, leader string) { return uint16(e.Code), e.Leader }

// Sentinels for errors.Is; each matches every *Error of its Code.
var (
	ErrNotLeader     = &Error{Code: CodeNotLeader}
	ErrBusy          = &Error{Code: CodeBusy}
	ErrTimeout       = &Error{Code: CodeTimeout}
	ErrShuttingDown  = &Error{Code: CodeShuttingDown}
	ErrStaleTerm     = &Error{Code: CodeStaleTerm}
	ErrLeaderChanged = &Error{Code: CodeLeaderChanged}
	ErrStateMachine  = &Error{Code: CodeStateMachine}
	ErrStorage       = &Error{Code: CodeStorage}
	ErrUnknownGroup  = &Error{Code: CodeUnknownGroup}
	ErrInvalid       = &Error{Code: CodeInvalidArgument}
	ErrTryAgain      = &Error{Code: CodeTryAgain}
)

// CodeOf returns the Code of the first *Error in err's chain, or
// CodeUnknown.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeUnknown
}

// newError builds an *Error; a helper for the package's call sites.
func newError(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...), Err: cause}
}
