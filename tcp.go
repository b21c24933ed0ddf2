package raftkit

import (
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/tcp"
)

// newTCPTransport starts the default transport on opts.Addr.
func newTCPTransport(opts HostOptions, h transport.Handler) (transport.Transport, error) {
	return tcp.New(tcp.Options{
		Addr: opts.Addr, TLS: opts.TLS, Logger: opts.Logger.With("component", "transport"),
	}, h)
}
