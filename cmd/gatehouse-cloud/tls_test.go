package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEdgeSyncsOverLeafTLSWithPrivateCA runs the real binaries: the cloud's leafnode
// listener has a certificate of a private CA (--leaf-tls-cert, --leaf-tls-key). A
// garage given that CA (--hub-ca) connects over tls://, answers a command and its
// events reach the cloud; a garage given another CA refuses the hub, says so in its
// log, and stays disconnected.
func TestEdgeSyncsOverLeafTLSWithPrivateCA(t *testing.T) {
	cloudBin, edgeBin := buildBinaries(t)
	pki := t.TempDir()
	caCert, caKey, caFile := makeCA(t, pki, "gatehouse-ca")
	_, _, otherCA := makeCA(t, pki, "other-ca")
	certFile, keyFile := makeServerCert(t, pki, caCert, caKey)

	work := t.TempDir()
	cloud := startCloudArgs(t, cloudBin, work, "run", "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
		"--leaf-listen", "127.0.0.1:0", "--leaf-tls-cert", certFile, "--leaf-tls-key", keyFile)
	dataDir := filepath.Join(work, defaultDataDir)

	good := &edgeProc{id: "garage-tls", log: &syncBuffer{}}
	bad := &edgeProc{id: "garage-untrusting", log: &syncBuffer{}}
	for _, e := range []*edgeProc{good, bad} {
		e.cfg, e.data = garageConfig(t, e.id), t.TempDir()
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("gatehouse-edge %s log:\n%s", e.id, e.log)
			}
		})
	}
	goodCreds := issueCredentials(t, cloudBin, dataDir, good.id, "")
	if b, err := os.ReadFile(goodCreds); err != nil || !strings.Contains(string(b), `"url": "tls://127.0.0.1:`) {
		t.Fatalf("issued credentials: %v\n%s\nwant a tls:// hub URL", err, b)
	}
	badCreds := issueCredentials(t, cloudBin, dataDir, bad.id, "")

	runEdge(t, edgeBin, good, "--hub-credentials", goodCreds, "--hub-ca", caFile)
	runEdge(t, edgeBin, bad, "--hub-credentials", badCreds, "--hub-ca", otherCA)

	waitFor(t, 20*time.Second, "the leaf connection over TLS", func() bool { return metric(good.api, "gatehouse_hub_connected") == 1 })
	out, err := cloudCommand(cloudBin, work, "command", good.id, "open", `{"operator":"ops","reason":"tls test","lane":"entry-1"}`)
	if err != nil || !strings.Contains(out, `"ok":true`) {
		t.Fatalf("command over the TLS leaf: %v\n%s", err, out)
	}
	waitFor(t, 20*time.Second, "the garage's events in the cloud", func() bool { return cloud.status(t, good.id).Events > 0 })

	want := "cannot connect to the cloud hub: its TLS certificate is not trusted (not signed by the hub CA " + otherCA
	waitFor(t, 20*time.Second, "the untrusting garage to log the refusal", func() bool { return strings.Contains(bad.log.String(), want) })
	if !strings.Contains(bad.log.String(), "certificate signed by unknown authority") {
		t.Errorf("the untrusting garage's log does not carry the TLS error")
	}
	if v := metric(bad.api, "gatehouse_hub_connected"); v != 0 {
		t.Errorf("the untrusting garage: gatehouse_hub_connected = %v; want 0", v)
	}
	if st := cloud.status(t, bad.id); st.Events != 0 {
		t.Errorf("the untrusting garage's events reached the cloud: %d", st.Events)
	}
	out, err = cloudCommand(cloudBin, work, "command", bad.id, "open", `{"operator":"ops","reason":"tls test","lane":"entry-1"}`)
	if err == nil || !strings.Contains(out, "garage offline") {
		t.Errorf("command to the untrusting garage: err %v\n%s\nwant \"garage offline\"", err, out)
	}
	cloud.stop(t)
}

// makeCA makes a certificate authority and writes its certificate to dir/name.pem.
func makeCA(t *testing.T, dir, name string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".pem")
	writePEM(t, file, "CERTIFICATE", der)
	return cert, key, file
}

// makeServerCert issues the hub a certificate for 127.0.0.1 and localhost, signed by
// the CA, and writes it and its key to dir.
func makeServerCert(t *testing.T, dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "hub"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "hub.crt"), filepath.Join(dir, "hub.key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
