package main

import (
	"crypto/tls"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/raftkit/raftkit/transport/tcp"
)

// tlsFiles are the --tls-cert, --tls-key and --tls-ca flags: all three or
// none, since raftkit's TLS is mutual (the servers check raftctl's
// certificate as they check each other's).
type tlsFiles struct{ cert, key, ca string }

func (t *tlsFiles) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&t.cert, "tls-cert", "", "raftctl's certificate (PEM); enables mutual TLS with --tls-key and --tls-ca")
	f.StringVar(&t.key, "tls-key", "", "the certificate's private key (PEM)")
	f.StringVar(&t.ca, "tls-ca", "", "the CA certificates (PEM) the servers' certificates must chain to")
}

func (t tlsFiles) validate() error {
	n := 0
	for _, f := range []string{t.cert, t.key, t.ca} {
		if f != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return usagef("--tls-cert, --tls-key and --tls-ca go together: give all three or none")
	}
	return nil
}

// load returns the TLS configuration, or nil for plain TCP.
func (t tlsFiles) load() (*tls.Config, error) {
	if t.cert == "" {
		return nil, nil
	}
	cfg, err := tcp.LoadMutualTLS(t.cert, t.key, t.ca)
	if err != nil {
		return nil, fmt.Errorf("loading TLS files: %w", err)
	}
	return cfg, nil
}
