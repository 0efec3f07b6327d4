package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate and its key into dir.
func writePair(t *testing.T, dir, name string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	cert, key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, "server")
	otherCert, _ := writePair(t, dir, "other")
	missing := filepath.Join(dir, "missing.pem")
	env := func(extra map[string]string) LookupEnv { return withEnv(extra) }

	t.Run("auto by default, clients not required to use TLS", func(t *testing.T) {
		for name, cfg := range map[string]*Config{"Default()": Default(), "embedded": nil} {
			if cfg == nil {
				var err error
				if cfg, err = Load("", env(nil)); err != nil {
					t.Fatal(err)
				}
			}
			if cfg.MySQL.TLS.Mode != TLSAuto || !cfg.MySQL.TLS.On() || cfg.MySQL.RequireSecureTransport {
				t.Fatalf("%s: %+v", name, cfg.MySQL)
			}
		}
	})
	t.Run("off", func(t *testing.T) {
		cfg, err := Load("", env(map[string]string{"MYSQL_TLS": "off"}))
		if err != nil || cfg.MySQL.TLS.On() || cfg.MySQL.TLS.Dir != "" {
			t.Fatalf("%+v %v", cfg.MySQL.TLS, err)
		}
	})
	t.Run("auto keeps its files beside the datadir", func(t *testing.T) {
		cfg, err := Load("", env(map[string]string{"MYSQL_TLS": "auto", "MYSQL_REQUIRE_SECURE_TRANSPORT": "true"}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MySQL.TLS.Dir != "/var/lib/mysql/data.tls" || !cfg.MySQL.TLS.On() || !cfg.MySQL.RequireSecureTransport {
			t.Fatalf("%+v", cfg.MySQL)
		}
	})
	t.Run("files", func(t *testing.T) {
		cfg, err := Load("", env(map[string]string{"MYSQL_TLS": "files", "MYSQL_TLS_CA": cert, "MYSQL_TLS_CERT": cert, "MYSQL_TLS_KEY": key}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MySQL.TLS.Key != key || cfg.MySQL.TLS.Dir != "" {
			t.Fatalf("%+v", cfg.MySQL.TLS)
		}
	})

	bad := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unknown mode", map[string]string{"MYSQL_TLS": "on"}, `config: mysql.tls.mode: "on": use "auto"`},
		{"files without files", map[string]string{"MYSQL_TLS": "files"},
			`config: mysql.tls.ca: required because mysql.tls.mode is "files": give the PEM file's path (MYSQL_TLS_CA)`},
		{"files with a missing key", map[string]string{"MYSQL_TLS": "files", "MYSQL_TLS_CA": cert, "MYSQL_TLS_CERT": cert, "MYSQL_TLS_KEY": missing},
			"config: mysql.tls.key: cannot be read: open " + missing + ": no such file or directory (mount the file, or fix the path)"},
		{"files with a relative path", map[string]string{"MYSQL_TLS": "files", "MYSQL_TLS_CA": "ca.pem", "MYSQL_TLS_CERT": cert, "MYSQL_TLS_KEY": key},
			`config: mysql.tls.ca: "ca.pem" must be an absolute path`},
		{"files with a key of another certificate", map[string]string{"MYSQL_TLS": "files", "MYSQL_TLS_CA": cert, "MYSQL_TLS_CERT": otherCert, "MYSQL_TLS_KEY": key},
			"config: mysql.tls.key: " + key + " and mysql.tls.cert " + otherCert + " are not a certificate and its key"},
		{"files with a CA that is not a certificate", map[string]string{"MYSQL_TLS": "files", "MYSQL_TLS_CA": key, "MYSQL_TLS_CERT": cert, "MYSQL_TLS_KEY": key},
			"config: mysql.tls.ca: " + key + " holds no PEM certificate"},
		{"a file given in auto mode", map[string]string{"MYSQL_TLS": "auto", "MYSQL_TLS_CA": cert},
			`config: mysql.tls.ca: is only used with mysql.tls.mode "files" (mode is "auto")`},
		{"secure transport without TLS", map[string]string{"MYSQL_TLS": "off", "MYSQL_REQUIRE_SECURE_TRANSPORT": "true"},
			`config: mysql.requireSecureTransport: needs TLS: set mysql.tls.mode to "auto" or "files"`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load("", env(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}
