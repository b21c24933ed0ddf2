package tcp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// LoadMutualTLS builds the configuration of a host in a cluster secured by
// mutual TLS: it presents the certificate in certFile (with the private key
// in keyFile) both as a server and as a client, and accepts only peers whose
// certificates chain to a CA in caFile, in both directions. The certificate
// therefore needs both the server and the client extended key usage, and
// names (IP or DNS) matching the addresses peers dial. TLS 1.3 is required.
//
// Errors name the file at fault. The returned Config is new; use it for
// Options.TLS and ClientOptions.TLS, and do not modify it afterwards. Safe
// for concurrent use: it only reads the files.
func LoadMutualTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tcp: read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tcp: read key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tcp: key pair %s, %s: %w", certFile, keyFile, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tcp: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("tcp: CA file %s holds no PEM certificate", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// TLSFiles names the three PEM files of mutual TLS, as command-line tools
// take them: all three, or none for plain TCP. A plain value.
type TLSFiles struct{ Cert, Key, CA string }

// Check reports a partial set (some names given, not all) without reading
// anything, so that tools can refuse a bad command line before acting.
func (f TLSFiles) Check() error {
	n := 0
	for _, s := range []string{f.Cert, f.Key, f.CA} {
		if s != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return errors.New("--tls-cert, --tls-key and --tls-ca go together: give all three or none")
	}
	return nil
}

// Load returns the mutual TLS configuration (LoadMutualTLS), or nil when
// no file is named.
func (f TLSFiles) Load() (*tls.Config, error) {
	if err := f.Check(); err != nil || f.Cert == "" {
		return nil, err
	}
	cfg, err := LoadMutualTLS(f.Cert, f.Key, f.CA)
	if err != nil {
		return nil, fmt.Errorf("loading TLS files: %w", err)
	}
	return cfg, nil
}
