package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

const pw = "repl-password-0123456789"

// memStore is the Consul key in memory, with the same create-only check-and-set.
type memStore struct {
	mu      sync.Mutex
	val     []byte
	creates int
}

func (m *memStore) LoadCA(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.val, nil
}

func (m *memStore) CreateCA(_ context.Context, b []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.creates++
	if m.val != nil {
		return false, nil
	}
	m.val = b
	return true, nil
}

func TestSealOpen(t *testing.T) {
	ca, err := NewCA("test CA", t0)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ca.Seal(pw, minIterations)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rec)
	der, _ := x509.MarshalPKCS8PrivateKey(ca.key)
	if bytes.Contains(b, der) || strings.Contains(string(b), "PRIVATE KEY") || strings.Contains(string(b), pw) {
		t.Fatal("the record holds the CA key or the password in clear")
	}

	t.Run("the right password opens it", func(t *testing.T) {
		got, err := rec.Open(pw)
		if err != nil {
			t.Fatal(err)
		}
		if !got.key.Equal(ca.key) {
			t.Fatal("opened another key")
		}
	})
	t.Run("a wrong password fails clearly", func(t *testing.T) {
		_, err := rec.Open(pw + "x")
		if !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("got %v, want ErrWrongPassword", err)
		}
		if !strings.Contains(err.Error(), "MYSQL_REPL_PASSWORD") || strings.Contains(err.Error(), pw) {
			t.Fatalf("error should name the setting and not the password: %v", err)
		}
	})
	t.Run("the sealed key cannot be paired with another certificate", func(t *testing.T) {
		other, err := NewCA("other", t0)
		if err != nil {
			t.Fatal(err)
		}
		swapped := rec
		swapped.CertPEM = string(other.CertPEM)
		if _, err := swapped.Open(pw); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("got %v, want a refusal", err)
		}
	})
	t.Run("a weak derivation is refused", func(t *testing.T) {
		weak := rec
		weak.Iterations = 1000
		if _, err := weak.Open(pw); err == nil || !strings.Contains(err.Error(), "too weak") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestIssue(t *testing.T) {
	ca, err := NewCA("test CA", t0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("node-a", []string{"node-a", "10.0.0.7", "127.0.0.1", "node-a"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := parseCert(leaf.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, host := range []string{"node-a", "10.0.0.7", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, CurrentTime: t0.Add(time.Hour)}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if err := cert.VerifyHostname("10.0.0.8"); err == nil {
		t.Error("the certificate is valid for an address it does not name")
	}
	if d := cert.NotAfter.Sub(t0); d != LeafValidity {
		t.Errorf("valid for %s, want %s", d, LeafValidity)
	}
	if why := Reusable(ca, leaf.CertPEM, []string{"127.0.0.1", "node-a", "10.0.0.7"}, t0); why != "" {
		t.Errorf("fresh certificate not reusable: %s", why)
	}
	if why := Reusable(ca, leaf.CertPEM, []string{"127.0.0.1", "node-a", "10.0.0.9"}, t0); !strings.Contains(why, "names") {
		t.Errorf("changed address: %q", why)
	}
	if why := Reusable(ca, leaf.CertPEM, []string{"127.0.0.1", "node-a", "10.0.0.7"}, t0.Add(LeafValidity-RenewBefore+time.Hour)); !strings.Contains(why, "expires") {
		t.Errorf("near expiry: %q", why)
	}
	other, _ := NewCA("other", t0)
	if why := Reusable(other, leaf.CertPEM, []string{"127.0.0.1", "node-a", "10.0.0.7"}, t0); !strings.Contains(why, "cluster CA") {
		t.Errorf("other CA: %q", why)
	}
	if blk, _ := pem.Decode(leaf.KeyPEM); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Error("key is not a PKCS#8 PEM")
	}
}

// Nodes racing to create the cluster CA end with one, and every one of them uses it.
func TestEnsureCARace(t *testing.T) {
	s := &memStore{}
	const n = 4
	var wg sync.WaitGroup
	recs := make([]Record, n)
	created := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i], _, created[i], errs[i] = EnsureCA(context.Background(), s, "test CA", fmt.Sprint("node-", i), pw, t0)
		}()
	}
	wg.Wait()
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if created[i] {
			winners++
		}
		if recs[i].CertPEM != recs[0].CertPEM {
			t.Fatalf("node %d uses another CA", i)
		}
	}
	var stored Record
	if err := json.Unmarshal(s.val, &stored); err != nil || stored.CertPEM != recs[0].CertPEM {
		t.Fatalf("stored CA differs from the one in use (%v)", err)
	}
	if winners != 1 {
		t.Fatalf("%d nodes say they created the CA, want 1", winners)
	}
}

func TestInstall(t *testing.T) {
	s := &memStore{}
	dir := filepath.Join(t.TempDir(), "data.tls")
	o := InstallOptions{Dir: dir, Node: "a", Hosts: []string{"a", "127.0.0.1"}, CAName: "test CA", Password: pw, UID: -1, GID: -1, Now: t0}
	ctx := context.Background()

	f, did, err := Install(ctx, s, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(did, "created the cluster CA") {
		t.Errorf("first install: %q", did)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v %v", fi.Mode(), err)
	}
	for _, p := range []string{f.CA, f.Cert, f.Key} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", p, fi.Mode(), err)
		}
	}
	cert1, _ := os.ReadFile(f.Cert)

	t.Run("a valid certificate is kept without opening the CA", func(t *testing.T) {
		o := o
		o.Password = "another-password-0000"
		_, did, err := Install(ctx, s, o)
		if err != nil || !strings.HasPrefix(did, "kept") {
			t.Fatalf("%q %v", did, err)
		}
		if cert, _ := os.ReadFile(f.Cert); !bytes.Equal(cert, cert1) {
			t.Fatal("certificate changed")
		}
	})
	t.Run("a new address re-issues", func(t *testing.T) {
		o := o
		o.Hosts = []string{"a", "127.0.0.1", "10.1.2.3"}
		_, did, err := Install(ctx, s, o)
		if err != nil || !strings.Contains(did, "issued") || strings.Contains(did, "created") {
			t.Fatalf("%q %v", did, err)
		}
		cert, _ := os.ReadFile(f.Cert)
		c, _ := parseCert(cert)
		if err := c.VerifyHostname("10.1.2.3"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("re-issuing with the wrong password fails clearly and leaves the files", func(t *testing.T) {
		o := o
		o.Password = "another-password-0000"
		o.Hosts = []string{"b"}
		before, _ := os.ReadFile(f.Cert)
		_, _, err := Install(ctx, s, o)
		if !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "made by node a") {
			t.Fatalf("got %v", err)
		}
		if after, _ := os.ReadFile(f.Cert); !bytes.Equal(before, after) {
			t.Fatal("files changed")
		}
	})
	t.Run("a missing key re-issues", func(t *testing.T) {
		if err := os.Remove(f.Key); err != nil {
			t.Fatal(err)
		}
		o := o
		o.Hosts = []string{"a", "127.0.0.1", "10.1.2.3"}
		_, did, err := Install(ctx, s, o)
		if err != nil || !strings.Contains(did, "issued") {
			t.Fatalf("%q %v", did, err)
		}
	})
	t.Run("no clear key on disk but the node's own", func(t *testing.T) {
		var rec Record
		_ = json.Unmarshal(s.val, &rec)
		ca, err := rec.Open(pw)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(ca.key)
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			if bytes.Contains(b, der) || bytes.Contains(b, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})) {
				t.Fatalf("%s holds the CA key", e.Name())
			}
		}
	})
}
