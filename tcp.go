package raftkit

import (
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/tcp"
)

// newTCPTransport starts the default transport on opts.ListenAddr, or
// opts.Addr, advertising opts.Addr.
func newTCPTransport(opts HostOptions, h transport.Handler) (transport.Transport, error) {
	o := tcp.Options{
		Addr: opts.Addr, TLS: opts.TLS, DialContext: opts.DialContext,
		Logger: opts.Logger.With("component", "transport"),
	}
	if opts.ListenAddr != "" {
		o.Addr, o.AdvertiseAddr = opts.ListenAddr, opts.Addr
	}
	return tcp.New(o, h)
}
