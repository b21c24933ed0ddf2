package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/metrics/prom"
	"github.com/raftkit/raftkit/statushttp"
	"github.com/raftkit/raftkit/transport/tcp"
)

// observability is the server's --http side: a Prometheus registry its
// host reports to, and the HTTP server of /status, /metrics and the
// status page.
type observability struct {
	reg    *prometheus.Registry
	sink   *prom.Sink
	srv    *http.Server
	caller *tcp.Client
	done   chan error
}

// newObservability makes the registry (with Go runtime and process
// collectors) and the sink the host will report to.
func newObservability() (*observability, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sink, err := prom.New(reg)
	if err != nil {
		return nil, err
	}
	return &observability{reg: reg, sink: sink}, nil
}

// serve listens on addr and serves host's status and metrics; peers are
// asked for their status over the raft port, with TLS when it has it.
func (o *observability) serve(addr string, host *raftkit.NodeHost, tlsCfg *tls.Config, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--http: %w", err)
	}
	o.caller = tcp.NewClient(tcp.ClientOptions{TLS: tlsCfg, DialTimeout: time.Second})
	o.srv = &http.Server{
		Handler: statushttp.New(host, statushttp.Options{Caller: o.caller, Logger: log,
			Metrics: promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{})}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	o.done = make(chan error, 1)
	go func() { o.done <- o.srv.Serve(ln) }()
	log.Info("status page", "url", "http://"+ln.Addr().String()+"/")
	return nil
}

// close stops the HTTP server, giving requests in flight a moment.
func (o *observability) close() error {
	if o.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := o.srv.Shutdown(ctx)
	if serr := <-o.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, o.caller.Close())
}
