package harness

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"syscall"
)

// RootDB opens a pool to the node's server as root over its socket, with short timeouts (for
// faults the application account may not cause, such as stopping replication).
func (n *PilotNode) RootDB() *sql.DB {
	dsn := fmt.Sprintf("root:%s@unix(%s)/?timeout=1s&readTimeout=5s&writeTimeout=5s", RootPassword, filepath.Join(n.Dir, "mysqld.sock"))
	db, _ := sql.Open("mysql", dsn)
	db.SetMaxOpenConns(1)
	return db
}

// FreezeMySQL stops the node's mariadbd with SIGSTOP (mysqlpilot keeps running); ThawMySQL
// resumes it.
func (n *PilotNode) FreezeMySQL() { n.signalMySQL(syscall.SIGSTOP) }

// ThawMySQL resumes a frozen mariadbd.
func (n *PilotNode) ThawMySQL() { n.signalMySQL(syscall.SIGCONT) }

func (n *PilotNode) signalMySQL(sig syscall.Signal) {
	n.t.Helper()
	pid := n.MySQLPid()
	if pid <= 0 {
		n.t.Fatalf("%s: no mariadbd pid", n.Name)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		n.t.Fatalf("%s: signal mariadbd %d: %v", n.Name, pid, err)
	}
}

// KV reads a key of the cluster (under the default prefix service/mysql/) from Consul, raw;
// ok is false when it does not exist.
func (c *Cluster) KV(key string) (string, bool) {
	b, err := c.Consul.Get("/v1/kv/service/mysql/" + key + "?raw")
	if err != nil {
		return "", false
	}
	return string(b), true
}
