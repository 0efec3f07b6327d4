//go:build integration

package mysql_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/certs"
	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// caStore is the Consul key of the cluster CA, in memory.
type caStore struct {
	mu  sync.Mutex
	val []byte
}

func (s *caStore) LoadCA(context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.val, nil
}

func (s *caStore) CreateCA(_ context.Context, b []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.val != nil {
		return false, nil
	}
	s.val = b
	return true, nil
}

// tlsNode installs node's certificate from the cluster CA in store (as mysql.tls auto does)
// and starts a server using it.
func tlsNode(t *testing.T, id int, store certs.Store, hosts []string, requireSecure bool) (node, certs.Files) {
	t.Helper()
	f, did, err := certs.Install(testCtx(t), store, certs.InstallOptions{
		Dir: filepath.Join(t.TempDir(), "data.tls"), Node: "node-" + string(rune('a'+id-1)), Hosts: hosts,
		CAName: "test cluster CA", Password: replPW, UID: -1, GID: -1, Now: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server %d: %s", id, did)
	srv := harness.StartMariaDB(t, harness.MariaDBOptions{ServerID: id, RootPassword: rootPW, Config: func(c *mysql.ServerConfig) {
		c.TLS = &mysql.ServerTLS{CA: f.CA, Cert: f.Cert, Key: f.Key, RequireSecureTransport: requireSecure}
	}})
	db, err := mysql.Open(testCtx(t), mysql.Conn{Flavor: mysql.MariaDB, Socket: srv.Socket(), Password: rootPW,
		PasswordSource: "MYSQL_ROOT_PASSWORD", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return node{srv: srv, db: db}, f
}

// slaveStatus returns the named columns of SHOW SLAVE STATUS.
func slaveStatus(t *testing.T, ctx context.Context, n node, cols ...string) map[string]string {
	t.Helper()
	rows, err := n.db.SQL().QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	names, _ := rows.Columns()
	if !rows.Next() {
		t.Fatal("not a replica")
	}
	vals := make([]sql.NullString, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, name := range names {
		for _, c := range cols {
			if c == name {
				out[c] = vals[i].String
			}
		}
	}
	return out
}

// ioError waits for the replica's IO thread to fail and returns its error.
func ioError(t *testing.T, ctx context.Context, replica node, what string) *mysql.ReplicaStatus {
	t.Helper()
	var st *mysql.ReplicaStatus
	eventually(t, 30*time.Second, what, func() (bool, error) {
		var err error
		st, err = replica.db.ReplicaStatus(ctx)
		return err == nil && st != nil && st.LastIOError != "" && !st.IORunning, err
	})
	t.Logf("%s: IO state %q, error %d: %s", what, st.IOState, st.LastIOErrno, st.LastIOError)
	return st
}

// TestReplicationTLS: a replica with the cluster CA replicates over TLS and verifies the
// primary's certificate; it refuses a primary whose certificate does not name the address it
// connects to, or is signed by another CA; and the primary refuses a replica without TLS.
func TestReplicationTLS(t *testing.T) {
	ctx := testCtx(t)
	store := &caStore{}
	// requireSecure on the primary: the replica's TCP login must be TLS, mysqlpilot's
	// socket login stays allowed.
	a, fa := tlsNode(t, 1, store, []string{"node-a", "127.0.0.1"}, true)
	b, fb := tlsNode(t, 2, store, []string{"node-b", "127.0.0.1"}, false)
	if ca, _ := os.ReadFile(fa.CA); !strings.Contains(string(ca), "BEGIN CERTIFICATE") {
		t.Fatal("no CA certificate")
	}
	if err := a.db.Bootstrap(ctx, users); err != nil {
		t.Fatal(err)
	}
	for want := range []bool{true, false} {
		changed, err := a.db.RequireReplTLS(ctx, users.ReplUser, true)
		if err != nil {
			t.Fatal(err)
		}
		if changed != (want == 0) {
			t.Fatalf("RequireReplTLS call %d changed=%t", want+1, changed)
		}
	}
	if err := a.db.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	start := func(o mysql.ChangePrimaryOptions) {
		t.Helper()
		o.ConnectRetry = time.Second
		if err := b.db.ChangePrimary(ctx, a.primary(), o); err != nil {
			t.Fatal(err)
		}
		if err := b.db.StartReplica(ctx); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("replicates over TLS, verifying the primary", func(t *testing.T) {
		start(mysql.ChangePrimaryOptions{SSL: true, SSLCA: fb.CA})
		if _, err := a.db.SQL().ExecContext(ctx, "CREATE TABLE app_db.t (id INT PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.db.SQL().ExecContext(ctx, "INSERT INTO app_db.t VALUES (1), (2)"); err != nil {
			t.Fatal(err)
		}
		waitCaughtUp(t, ctx, b, a)
		var n int
		if err := b.db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM app_db.t").Scan(&n); err != nil || n != 2 {
			t.Fatalf("replica has %d rows (%v)", n, err)
		}
		st := slaveStatus(t, ctx, b, "Slave_IO_Running", "Master_SSL_Allowed", "Master_SSL_Verify_Server_Cert", "Master_SSL_CA_File")
		t.Logf("replica: %v", st)
		if st["Slave_IO_Running"] != "Yes" || st["Master_SSL_Allowed"] != "Yes" || st["Master_SSL_Verify_Server_Cert"] != "Yes" || st["Master_SSL_CA_File"] != fb.CA {
			t.Fatalf("replica status %v", st)
		}
		// The replication connection on the primary is encrypted.
		var cipher string
		if err := a.db.SQL().QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SSL_ACCEPTS'").Scan(&cipher); err != nil || cipher == "0" {
			t.Fatalf("primary accepted %s TLS connections (%v)", cipher, err)
		}
	})

	t.Run("a certificate renewed while the server runs is loaded by ReloadTLS", func(t *testing.T) {
		if _, err := a.db.SQL().ExecContext(ctx, mysql.MariaDB.ReloadTLS()); err != nil {
			t.Fatalf("%s: %v", mysql.MariaDB.ReloadTLS(), err)
		}
		if _, err := a.db.SQL().ExecContext(ctx, "INSERT INTO app_db.t VALUES (3)"); err != nil {
			t.Fatal(err)
		}
		waitCaughtUp(t, ctx, b, a)
		if st := slaveStatus(t, ctx, b, "Slave_IO_Running", "Master_SSL_Allowed"); st["Slave_IO_Running"] != "Yes" || st["Master_SSL_Allowed"] != "Yes" {
			t.Fatalf("replica status after the reload %v", st)
		}
	})

	t.Run("a replica without TLS is refused by the primary", func(t *testing.T) {
		start(mysql.ChangePrimaryOptions{})
		st := ioError(t, ctx, b, "the primary refuses a plain login")
		if st.LastIOErrno != 1045 {
			t.Fatalf("error %d: %s", st.LastIOErrno, st.LastIOError)
		}
	})

	t.Run("a primary certificate signed by another CA is refused", func(t *testing.T) {
		other, _, err := certs.Install(ctx, &caStore{}, certs.InstallOptions{Dir: filepath.Join(t.TempDir(), "other.tls"), Node: "x",
			Hosts: []string{"127.0.0.1"}, CAName: "another CA", Password: replPW, UID: -1, GID: -1, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		start(mysql.ChangePrimaryOptions{SSL: true, SSLCA: other.CA})
		st := ioError(t, ctx, b, "the replica refuses a primary it cannot verify")
		// MariaDB 10.11 says only "SSL connection error: error:00000000:lib(0)::reason(0)":
		// ha.ReplicationErrorClass gives error 2026 its meaning.
		if st.LastIOErrno != 2026 {
			t.Fatalf("error %d: %s", st.LastIOErrno, st.LastIOError)
		}
	})

	t.Run("a primary certificate that does not name the address is refused", func(t *testing.T) {
		// Give the primary a certificate of the cluster CA for another name, and reload it.
		var rec certs.Record
		if err := jsonUnmarshal(store.val, &rec); err != nil {
			t.Fatal(err)
		}
		ca, err := rec.Open(replPW)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := ca.Issue("node-a", []string{"node-a.example"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fa.Cert, leaf.CertPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fa.Key, leaf.KeyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := a.db.SQL().ExecContext(ctx, "FLUSH SSL"); err != nil {
			t.Fatal(err)
		}
		start(mysql.ChangePrimaryOptions{SSL: true, SSLCA: fb.CA})
		st := ioError(t, ctx, b, "the replica refuses a certificate for another name")
		if st.LastIOErrno != 2026 {
			t.Fatalf("error %d: %s", st.LastIOErrno, st.LastIOError)
		}
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
