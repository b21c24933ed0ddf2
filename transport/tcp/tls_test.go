package tcp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/tcp"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

func serialNumber(t *testing.T) *big.Int {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serialNumber(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue writes a host certificate for 127.0.0.1, usable as server and
// client, and its key; it returns their paths.
func (ca *testCA) issue(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func loadTLS(t *testing.T, ca *testCA, dir, name string) *tls.Config {
	t.Helper()
	cert, key := ca.issue(t, dir, name)
	cfg, err := tcp.LoadMutualTLS(cert, key, ca.file)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestMutualTLS(t *testing.T) {
	testutil.CheckLeaks(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir, "cluster")
	ra, rb := &testutil.Recorder{}, &testutil.Recorder{}
	a := newTransport(t, tcp.Options{TLS: loadTLS(t, ca, dir, "a")}, ra)
	b := newTransport(t, tcp.Options{TLS: loadTLS(t, ca, dir, "b")}, rb)
	sendAll(t, a, 1, []string{b.Addr()}, []uint64{1, 2}, 50)
	sendAll(t, b, 2, []string{a.Addr()}, []uint64{1, 2}, 50)
	testutil.WaitFor(t, 10*time.Second, "all messages", func() bool { return ra.Count() == 100 && rb.Count() == 100 })
	checkOrdered(t, rb, []uint64{1}, []uint64{1, 2}, 50)
	checkOrdered(t, ra, []uint64{2}, []uint64{1, 2}, 50)

	a.RegisterService("echo", echo)
	c := newClient(t, tcp.ClientOptions{TLS: loadTLS(t, ca, dir, "client")})
	resp, err := c.Call(ctxTimeout(t, 10*time.Second), a.Addr(), "echo", 3, []byte("over tls"))
	if err != nil || string(resp) != "group 3: over tls" {
		t.Fatalf("call over TLS = %q, %v", resp, err)
	}
}

// TestMutualTLSRejectsStrangers checks that peers without a certificate the
// cluster's CA signed deliver nothing, while the server keeps serving.
func TestMutualTLSRejectsStrangers(t *testing.T) {
	testutil.CheckLeaks(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir, "cluster")
	rogue := newTestCA(t, dir, "rogue")
	ra := &testutil.Recorder{}
	a := newTransport(t, tcp.Options{TLS: loadTLS(t, ca, dir, "a")}, ra)
	a.RegisterService("echo", echo)

	// A certificate from another CA, trusting the cluster's CA so that the
	// stranger itself accepts the server.
	strangerCfg := loadTLS(t, rogue, dir, "stranger")
	strangerCfg.RootCAs = loadTLS(t, ca, dir, "unused").RootCAs
	// No client certificate at all.
	anonCfg := &tls.Config{RootCAs: strangerCfg.RootCAs, MinVersion: tls.VersionTLS13}

	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{{"foreign CA", strangerCfg}, {"no certificate", anonCfg}} {
		t.Run(tc.name, func(t *testing.T) {
			before := a.Stats().Disconnects.Handshake
			s := newTransport(t, tcp.Options{TLS: tc.cfg}, &testutil.Recorder{})
			s.Send(a.Addr(), 1, msg(9, 1, "intruder"))
			testutil.WaitFor(t, 10*time.Second, "the handshake to be refused", func() bool { return a.Stats().Disconnects.Handshake > before })

			c := newClient(t, tcp.ClientOptions{TLS: tc.cfg})
			_, err := c.Call(ctxTimeout(t, 10*time.Second), a.Addr(), "echo", 1, nil)
			var re *transport.RemoteError
			if err == nil || errors.As(err, &re) {
				t.Fatalf("call without a valid certificate: %v", err)
			}
		})
	}
	if n := ra.Count(); n != 0 {
		t.Fatalf("server received %d messages from strangers", n)
	}
	// A member still gets through.
	b := newTransport(t, tcp.Options{TLS: loadTLS(t, ca, dir, "b")}, &testutil.Recorder{})
	sendUntil(t, b, a.Addr(), 1, msg(2, 1, ""), func() bool { return ra.Has(1, 1) })
}

func TestMutualTLSServerMustBeTrusted(t *testing.T) {
	testutil.CheckLeaks(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir, "cluster")
	rogue := newTestCA(t, dir, "rogue")
	ra := &testutil.Recorder{}
	impostor := newTransport(t, tcp.Options{TLS: loadTLS(t, rogue, dir, "impostor")}, ra)
	a := newTransport(t, tcp.Options{TLS: loadTLS(t, ca, dir, "a")}, &testutil.Recorder{})
	a.Send(impostor.Addr(), 1, msg(1, 1, "secret"))
	testutil.WaitFor(t, 10*time.Second, "the dial to fail", func() bool { return a.Stats().DialFailures == 1 })
	if ra.Count() != 0 {
		t.Fatal("an untrusted server received a message")
	}
}

func TestLoadMutualTLSErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "cluster")
	cert, key := ca.issue(t, dir, "a")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name, cert, key, ca, mention string
	}{
		{"missing certificate", missing, key, ca.file, missing},
		{"missing key", cert, missing, ca.file, missing},
		{"missing CA", cert, key, missing, missing},
		{"garbage certificate", garbage, key, ca.file, garbage},
		{"key of another certificate", cert, garbage, ca.file, garbage},
		{"garbage CA", cert, key, garbage, garbage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tcp.LoadMutualTLS(tc.cert, tc.key, tc.ca)
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %v does not name %s", err, tc.mention)
			}
		})
	}
	cfg, err := tcp.LoadMutualTLS(cert, key, ca.file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.RootCAs == nil || cfg.ClientCAs == nil || len(cfg.Certificates) != 1 {
		t.Fatalf("config is not mutual: %+v", cfg)
	}
}
