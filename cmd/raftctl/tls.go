package main

import (
	"crypto/tls"

	"github.com/spf13/cobra"

	"github.com/raftkit/raftkit/transport/tcp"
)

// tlsFiles are the --tls-cert, --tls-key and --tls-ca flags: all three or
// none, since raftkit's TLS is mutual (the servers check raftctl's
// certificate as they check each other's).
type tlsFiles struct{ tcp.TLSFiles }

func (t *tlsFiles) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&t.Cert, "tls-cert", "", "raftctl's certificate (PEM); enables mutual TLS with --tls-key and --tls-ca")
	f.StringVar(&t.Key, "tls-key", "", "the certificate's private key (PEM)")
	f.StringVar(&t.CA, "tls-ca", "", "the CA certificates (PEM) the servers' certificates must chain to")
}

func (t tlsFiles) validate() error {
	if err := t.Check(); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// load returns the TLS configuration, or nil for plain TCP.
func (t tlsFiles) load() (*tls.Config, error) { return t.Load() }
