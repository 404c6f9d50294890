package natsbus_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/gatehouse-parking/gatehouse/edge/natsbus"
)

// testCA is a certificate authority made up for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

func newTestCA(tb testing.TB, name string) *testCA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	file := filepath.Join(tb.TempDir(), name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

// serverCert issues a server certificate for 127.0.0.1 and localhost.
func (ca *testCA) serverCert(tb testing.TB) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "hub"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// startTLSHub starts a NATS server whose leafnode listener requires TLS with cert,
// and returns it with the leaf URL (tls://127.0.0.1:port).
func startTLSHub(tb testing.TB, cert tls.Certificate) (*server.Server, string) {
	tb.Helper()
	opts := &server.Options{
		ServerName: "hub", Host: "127.0.0.1", Port: -1, NoSigs: true,
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: -1, TLSTimeout: 5,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}},
	}
	s, err := server.NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		tb.Fatal("hub not ready")
	}
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s, "tls://127.0.0.1:" + strconv.Itoa(opts.LeafNode.Port)
}

// logBuf collects a bus's log.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	tb.Fatalf("timed out waiting for %s", what)
}

// TestHubTLSWithPrivateCA dials a hub whose leaf listener has a certificate of a
// private CA: with that CA as HubCA the leaf comes up and messages cross it; with
// another CA, or the system's roots, the hub is refused and the log says why.
func TestHubTLSWithPrivateCA(t *testing.T) {
	ca, other := newTestCA(t, "gatehouse-ca"), newTestCA(t, "other-ca")
	hub, hubURL := startTLSHub(t, ca.serverCert(t))

	t.Run("the hub's CA", func(t *testing.T) {
		b := mustStart(t, natsbus.Config{Name: "gatehouse-tls-ok", StoreDir: t.TempDir(), Port: -1,
			JetStreamDomain: "fac-ok", HubURL: hubURL, HubCA: ca.file, Logger: testLogger(t)})
		waitFor(t, "the leaf connection over TLS", b.LeafConnected)
		lz, err := hub.Leafz(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(lz.Leafs) != 1 || lz.Leafs[0].Name != "gatehouse-tls-ok" {
			t.Fatalf("hub's leaf connections: %+v; want one from gatehouse-tls-ok", lz.Leafs)
		}
		// A message crosses the leaf: once the hub's subscription has reached the edge.
		hc, err := nats.Connect(hub.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		defer hc.Close()
		sub, err := hc.SubscribeSync("gh.fac.ok.evt.>")
		if err != nil {
			t.Fatal(err)
		}
		if err := hc.Flush(); err != nil {
			t.Fatal(err)
		}
		ec := mustNATS(t, b)
		waitFor(t, "a message from the edge at the hub", func() bool {
			if err := ec.Publish("gh.fac.ok.evt.x", []byte("over TLS")); err != nil {
				t.Fatal(err)
			}
			m, err := sub.NextMsg(50 * time.Millisecond)
			return err == nil && string(m.Data) == "over TLS"
		})
	})

	for _, tc := range []struct{ name, ca, want string }{
		{"another CA", other.file, "not signed by the hub CA " + other.file},
		{"the system's roots", "", "not signed by the system's root CAs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuf{}
			name := "gatehouse-tls-" + strings.ReplaceAll(tc.name, " ", "-")
			name = strings.ReplaceAll(name, "'", "")
			b := mustStart(t, natsbus.Config{Name: name, StoreDir: t.TempDir(), Port: -1,
				JetStreamDomain: "fac-x", HubURL: hubURL, HubCA: tc.ca,
				Logger: slog.New(slog.NewTextHandler(logs, nil))})
			waitFor(t, "the refusal in the log", func() bool {
				return strings.Contains(logs.String(), "cannot connect to the cloud hub: its TLS certificate is not trusted")
			})
			if !strings.Contains(logs.String(), tc.want) {
				t.Errorf("log does not say %q:\n%s", tc.want, logs)
			}
			if !strings.Contains(logs.String(), "certificate signed by unknown authority") {
				t.Errorf("log does not carry the TLS error:\n%s", logs)
			}
			if b.LeafConnected() {
				t.Error("LeafConnected() = true with an untrusted hub certificate")
			}
			if lz, _ := hub.Leafz(nil); len(lz.Leafs) != 0 { // the trusted edge has stopped
				t.Errorf("hub has %d leaf connections; want none", len(lz.Leafs))
			}
		})
	}

	t.Run("a CA file without a certificate", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := natsbus.Start(natsbus.Config{Name: "gatehouse-badca", StoreDir: t.TempDir(), Port: -1,
			HubURL: hubURL, HubCA: bad})
		if err == nil {
			b.Shutdown()
			t.Fatal("Start with a CA file holding no certificate succeeded")
		}
		if !strings.Contains(err.Error(), "no PEM certificate") {
			t.Errorf("Start: %v; want an error saying the file holds no PEM certificate", err)
		}
	})
}
