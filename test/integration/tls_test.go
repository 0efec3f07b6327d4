//go:build integration

package integration

import (
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// rootSocket opens root over the node's socket (allowed under require_secure_transport).
func rootSocket(t *testing.T, n *harness.PilotNode) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", fmt.Sprintf("root:%s@unix(%s)/?timeout=2s", harness.RootPassword, filepath.Join(n.Dir, "mysqld.sock")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// tlsApp opens the application user over TCP with TLS, verifying the node's certificate
// against the cluster CA and the name 127.0.0.1.
func tlsApp(t *testing.T, n *harness.PilotNode, caFile string) *sql.DB {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate in " + caFile)
	}
	cfg := mysqldrv.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = harness.AppUser, harness.AppPassword, "tcp", fmt.Sprintf("127.0.0.1:%d", n.Port), harness.AppDatabase
	cfg.Timeout = 2 * time.Second
	cfg.TLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	c, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// replicaTLS returns a replica's Master_SSL_Allowed and Master_SSL_Verify_Server_Cert.
func replicaTLS(t *testing.T, n *harness.PilotNode) (allowed, verify, io string) {
	t.Helper()
	rows, err := rootSocket(t, n).Query("SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return "", "", ""
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	for i, c := range cols {
		switch c {
		case "Master_SSL_Allowed":
			allowed = vals[i].String
		case "Master_SSL_Verify_Server_Cert":
			verify = vals[i].String
		case "Slave_IO_Running":
			io = vals[i].String
		}
	}
	return allowed, verify, io
}

// TestReplicationTLSAuto: mysql.tls auto on real nodes: the first node makes the cluster CA
// (one, though all start at once), every node issues itself a certificate, replicas replicate
// over TLS verifying the primary, before and after a handover; clients must use TLS
// (requireSecureTransport); the CA key is sealed in Consul and no password leaks.
func TestReplicationTLSAuto(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{Mutate: func(_ int, cfg map[string]any) {
		m := cfg["mysql"].(map[string]any)
		m["tls"] = map[string]any{"mode": "auto"}
		m["requireSecureTransport"] = true
	}})
	p := c.WaitSettled(t, 3, 120*time.Second)
	t.Logf("primary: %s", p.Name)

	// One CA, in Consul, its key sealed.
	resp, err := http.Get("http://" + c.Consul.HTTPAddr() + "/v1/kv/service/mysql/tls-ca?raw")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rec struct {
		CertPEM    string `json:"certPEM"`
		KDF        string `json:"kdf"`
		Iterations int    `json:"iterations"`
		SealedKey  []byte `json:"sealedKey"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil || !strings.Contains(rec.CertPEM, "BEGIN CERTIFICATE") || len(rec.SealedKey) == 0 {
		t.Fatalf("tls-ca record %q: %v", raw, err)
	}
	if strings.Contains(string(raw), "PRIVATE KEY") {
		t.Fatal("the CA key is in Consul in clear")
	}
	created := 0
	for _, n := range c.Nodes {
		if strings.Contains(n.Log(), "created the cluster CA") {
			created++
		}
		ca, err := os.ReadFile(filepath.Join(n.Dir, "data.tls", "ca.pem"))
		if err != nil || strings.TrimSpace(string(ca)) != strings.TrimSpace(rec.CertPEM) {
			t.Fatalf("%s's ca.pem is not the cluster CA (%v)", n.Name, err)
		}
		for _, f := range []string{"ca.pem", "server.pem", "server-key.pem"} {
			if fi, err := os.Stat(filepath.Join(n.Dir, "data.tls", f)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("%s %s: %v %v", n.Name, f, fi, err)
			}
		}
	}
	if created != 1 {
		t.Fatalf("%d nodes say they created the cluster CA, want 1", created)
	}
	caFile := filepath.Join(p.Dir, "data.tls", "ca.pem")

	checkReplicas := func(p *harness.PilotNode) {
		t.Helper()
		for _, r := range others(c, p) {
			if !r.Running() {
				continue
			}
			var allowed, verify, io string
			harness.Eventually(t, 20*time.Second, r.Name+" replicates over TLS", func() bool {
				allowed, verify, io = replicaTLS(t, r)
				return io == "Yes"
			})
			if allowed != "Yes" || verify != "Yes" {
				t.Fatalf("%s: Master_SSL_Allowed=%q Master_SSL_Verify_Server_Cert=%q", r.Name, allowed, verify)
			}
		}
	}
	checkReplicas(p)

	// The replication account requires TLS.
	var sslType string
	if err := rootSocket(t, p).QueryRow("SELECT ssl_type FROM mysql.user WHERE User = 'repl' AND Host = '%'").Scan(&sslType); err != nil || sslType != "ANY" {
		t.Fatalf("repl ssl_type %q (%v)", sslType, err)
	}

	// Clients: TLS verified against the cluster CA works; plain TCP is refused.
	app := tlsApp(t, p, caFile)
	if _, err := app.Exec("CREATE TABLE kv (k INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec("INSERT INTO kv VALUES (1), (2), (3)"); err != nil {
		t.Fatal(err)
	}
	plain := p.DB()
	defer plain.Close()
	if err := plain.Ping(); err == nil {
		t.Fatal("a plain TCP client was let in with requireSecureTransport")
	} else {
		t.Logf("plain client: %v", err)
	}
	for _, r := range others(c, p) {
		db := tlsApp(t, r, caFile)
		harness.Eventually(t, 10*time.Second, "rows on "+r.Name, func() bool {
			var n int
			return db.QueryRow("SELECT COUNT(*) FROM kv").Scan(&n) == nil && n == 3
		})
	}

	// Handover: the new primary's replicas also verify it; the old one keeps its certificate.
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(60 * time.Second); code != 0 && code != 128+int(syscall.SIGTERM) {
		t.Fatalf("old primary exited %d", code)
	}
	p.Start()
	p2 := c.WaitSettled(t, 3, 90*time.Second)
	t.Logf("primary after handover: %s", p2.Name)
	if p2 == p {
		t.Fatal("the handover did not move the primary")
	}
	checkReplicas(p2)
	if !strings.Contains(p.Log(), "kept this node's certificate") {
		t.Errorf("%s did not keep its certificate at restart", p.Name)
	}
	c.AssertNoSecrets(t)
}
