package tcp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"

	"github.com/raftkit/raftkit/transport/frame"
)

// Defaults for the zero values of Options and ClientOptions.
const (
	DefaultDialTimeout      = 2 * time.Second
	DefaultWriteTimeout     = 5 * time.Second
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultMaxFrameSize     = frame.DefaultMaxPayload
	DefaultMaxQueueBytes    = 64 << 20
	DefaultBackoffMin       = 50 * time.Millisecond
	DefaultBackoffMax       = 2 * time.Second
)

// DialFunc opens a raw connection; TLS, when configured, is layered on top.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options configure a Transport. Zero values mean the defaults above.
type Options struct {
	// Addr is the address to listen on, such as "10.0.0.1:7000" or
	// "127.0.0.1:0" (a free port; Transport.Addr reports which). The
	// address the listener reports is the host's identity in Hello frames,
	// so it should be one peers can dial, unless AdvertiseAddr is set.
	Addr string
	// AdvertiseAddr, when set, is the host's identity in Hello frames and
	// what Transport.Addr reports: the address peers dial, when that is not
	// the listen address (a proxy, NAT or port forward in between).
	AdvertiseAddr string

	// TLS, when set, secures both the listener and every dial. For mutual
	// TLS (see LoadMutualTLS) it must set ClientAuth to require and verify
	// client certificates and hold this host's certificate. When
	// ServerName is empty, each dial verifies the peer against the host part
	// of its address.
	TLS *tls.Config

	// DialTimeout bounds a dial including the TLS handshake.
	DialTimeout time.Duration
	// WriteTimeout is the deadline of every write: a peer that stops
	// reading for that long is treated as failed.
	WriteTimeout time.Duration
	// HandshakeTimeout is how long an accepted connection has to complete
	// TLS and send its Hello.
	HandshakeTimeout time.Duration

	// MaxFrameSize is the largest frame payload accepted or sent. A
	// message whose encoding exceeds it is dropped by Send; a peer sending
	// one is disconnected. Hosts of a cluster should agree on it.
	MaxFrameSize int
	// MaxQueueBytes bounds the encoded messages waiting for one peer; Send
	// drops beyond it.
	MaxQueueBytes int

	// BackoffMin and BackoffMax bound the wait after a failed dial or
	// write. The k-th consecutive failure waits a random duration in
	// [b/2, b], and at least BackoffMin, where b = min(BackoffMax,
	// BackoffMin·2^(k-1)).
	BackoffMin, BackoffMax time.Duration
	// Rand supplies the backoff jitter. The Transport serialises its own
	// use of it, so it must not be used elsewhere meanwhile; inject one to
	// make backoff reproducible. Nil: a source of the Transport's own,
	// seeded from crypto/rand (never the global one).
	Rand *rand.Rand

	// Logger receives disconnects and dial failures. Nil discards.
	Logger *slog.Logger

	// DialContext opens outbound connections. Nil: a net.Dialer.
	DialContext DialFunc
}

func (o Options) withDefaults() (Options, error) {
	o.DialTimeout = orDefault(o.DialTimeout, DefaultDialTimeout)
	o.WriteTimeout = orDefault(o.WriteTimeout, DefaultWriteTimeout)
	o.HandshakeTimeout = orDefault(o.HandshakeTimeout, DefaultHandshakeTimeout)
	o.MaxFrameSize = orDefault(o.MaxFrameSize, DefaultMaxFrameSize)
	o.MaxQueueBytes = orDefault(o.MaxQueueBytes, DefaultMaxQueueBytes)
	o.BackoffMin = orDefault(o.BackoffMin, DefaultBackoffMin)
	o.BackoffMax = orDefault(o.BackoffMax, DefaultBackoffMax)
	switch {
	case o.DialTimeout < 0 || o.WriteTimeout < 0 || o.HandshakeTimeout < 0:
		return o, errors.New("tcp: negative timeout")
	case o.MaxFrameSize < 0 || o.MaxFrameSize > frame.MaxPayload:
		return o, fmt.Errorf("tcp: MaxFrameSize %d out of range (0, %d]", o.MaxFrameSize, frame.MaxPayload)
	case o.MaxQueueBytes < 0:
		return o, errors.New("tcp: negative MaxQueueBytes")
	case o.BackoffMin < 0 || o.BackoffMax < o.BackoffMin:
		return o, fmt.Errorf("tcp: backoff bounds [%v, %v] are not a range", o.BackoffMin, o.BackoffMax)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// ClientOptions configure a Client. Zero values mean the defaults above.
type ClientOptions struct {
	// TLS, when set, secures every connection; see Options.TLS.
	TLS *tls.Config
	// DialTimeout bounds a dial including the TLS handshake; a Call's
	// context may cut it shorter for that call.
	DialTimeout time.Duration
	// WriteTimeout is the deadline of every write of requests.
	WriteTimeout time.Duration
	// MaxFrameSize is the largest request or response payload; a Call
	// whose request exceeds it fails at once.
	MaxFrameSize int
	// Logger receives broken connections. Nil discards.
	Logger *slog.Logger
	// DialContext opens connections. Nil: a net.Dialer.
	DialContext DialFunc
}

func (o ClientOptions) withDefaults() ClientOptions {
	o.DialTimeout = orDefault(o.DialTimeout, DefaultDialTimeout)
	o.WriteTimeout = orDefault(o.WriteTimeout, DefaultWriteTimeout)
	o.MaxFrameSize = min(orDefault(o.MaxFrameSize, DefaultMaxFrameSize), frame.MaxPayload)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// dial opens a connection to addr within timeout, with TLS on top when cfg
// is set. The handshake completes here so that a server we cannot verify
// counts as a dial failure. (Under TLS 1.3 a server that rejects our
// certificate says so only after this returns: the first write or read
// fails instead.)
func dial(ctx context.Context, dialFn DialFunc, cfg *tls.Config, timeout time.Duration, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if dialFn == nil {
		var d net.Dialer
		dialFn = d.DialContext
	}
	raw, err := dialFn(ctx, "tcp", addr)
	if err != nil || cfg == nil {
		return raw, err
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}
