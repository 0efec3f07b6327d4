package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles are PEM files made for one test: a CA, a server certificate signed by it for
// 127.0.0.1 and localhost, and a client certificate signed by it. Keys are 0600.
type TLSFiles struct {
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// MakeTLS writes a fresh CA and certificates into dir (a t.TempDir()).
func MakeTLS(t testing.TB, dir string) TLSFiles {
	t.Helper()
	f := TLSFiles{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
	}
	now := time.Now()
	caKey := newKey(t)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mysqlpilot test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("harness: tls: CA: %v", err)
	}
	writePEM(t, f.CA, "CERTIFICATE", caDER, 0o644)
	caCert, _ := x509.ParseCertificate(caDER)

	leaf := func(serial int64, cn string, usage []x509.ExtKeyUsage, certPath, keyPath string) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: usage,
			DNSNames: []string{"localhost", "server.dc1.consul"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("harness: tls: %s: %v", cn, err)
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatalf("harness: tls: %s key: %v", cn, err)
		}
		writePEM(t, certPath, "CERTIFICATE", der, 0o644)
		writePEM(t, keyPath, "EC PRIVATE KEY", kb, 0o600)
	}
	// The server's certificate also serves Consul's own outgoing TLS, hence client auth too.
	leaf(2, "server.dc1.consul", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, f.ServerCert, f.ServerKey)
	leaf(3, "mysqlpilot", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, f.ClientCert, f.ClientKey)
	return f
}

// ClientConfig is a TLS client configuration that trusts the CA and presents the client
// certificate.
func (f TLSFiles) ClientConfig(t testing.TB) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(f.CA)
	if err != nil || !pool.AppendCertsFromPEM(b) {
		t.Fatalf("harness: tls: CA %s: %v", f.CA, err)
	}
	cert, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		t.Fatalf("harness: tls: client certificate: %v", err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("harness: tls: key: %v", err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatalf("harness: tls: %v", err)
	}
}
