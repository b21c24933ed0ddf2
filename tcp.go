package raftkit

import "github.com/raftkit/raftkit/transport"

// newTCPTransport starts the default transport.
func newTCPTransport(opts HostOptions, h transport.Handler) (transport.Transport, error) {
	return nil, &Error{Code: CodeInvalidArgument, Msg: "tcp transport pending"}
}
