//go:build integration

// Package integration drives real mysqlpilot binaries over a real Consul agent and real
// mariadbd servers on loopback: election, replication, failover, fencing, handover.
package integration

import (
	"context"
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

	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

func exec(t *testing.T, n *harness.PilotNode, q string) {
	t.Helper()
	db := n.DB()
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s on %s: %v", q, n.Name, err)
	}
}

func count(n *harness.PilotNode, q string) (int, error) {
	db := n.DB()
	defer db.Close()
	var c int
	err := db.QueryRow(q).Scan(&c)
	return c, err
}

func others(c *harness.Cluster, not *harness.PilotNode) []*harness.PilotNode {
	var out []*harness.PilotNode
	for _, n := range c.Nodes {
		if n != not {
			out = append(out, n)
		}
	}
	return out
}

// agentServices returns the IDs of the services registered on the Consul agent, with the
// status of their checks.
func agentServices(t *testing.T, c *harness.Cluster) map[string]string {
	t.Helper()
	b, err := c.Consul.Get("/v1/agent/checks")
	if err != nil {
		t.Fatalf("consul agent checks: %v", err)
	}
	var checks map[string]struct{ ServiceID, Status string }
	if err := json.Unmarshal(b, &checks); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, ch := range checks {
		if ch.ServiceID != "" {
			out[ch.ServiceID] = ch.Status
		}
	}
	return out
}

func TestElectionAndReplication(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{})
	p := c.WaitSettled(t, 3, 90*time.Second)
	t.Logf("primary: %s", p.Name)

	exec(t, p, `CREATE TABLE kv (k INT PRIMARY KEY, v VARCHAR(32))`)
	exec(t, p, `INSERT INTO kv VALUES (1, 'one'), (2, 'two')`)
	for _, r := range others(c, p) {
		harness.Eventually(t, 10*time.Second, "rows on "+r.Name, func() bool {
			n, err := count(r, `SELECT COUNT(*) FROM kv`)
			return err == nil && n == 2
		})
		db := r.DB()
		_, err := db.Exec(`INSERT INTO kv VALUES (3, 'three')`)
		db.Close()
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("write on replica %s: err = %v, want a read-only error", r.Name, err)
		}
	}
	out, err := p.Control("status", "--cluster")
	if err != nil {
		t.Fatalf("status --cluster: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		if !strings.Contains(out, n.Name) {
			t.Errorf("status --cluster does not list %s:\n%s", n.Name, out)
		}
	}
	svcs := agentServices(t, c)
	if svcs["mysql-primary-"+p.Name] != "passing" {
		t.Errorf("mysql-primary-%s = %q in Consul, want passing (all: %v)", p.Name, svcs["mysql-primary-"+p.Name], svcs)
	}
	for _, n := range c.Nodes {
		if svcs["mysql-"+n.Name] != "passing" {
			t.Errorf("mysql-%s = %q in Consul, want passing", n.Name, svcs["mysql-"+n.Name])
		}
	}
	c.AssertNoSecrets(t)
}

// TestKill9Failover kills the primary's mysqlpilot and mariadbd at once (semi-sync on): a
// replica takes over, no acknowledged write is lost, the other replica follows, and the old
// node rejoins as a replica.
func TestKill9Failover(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{SemiSync: true})
	p := c.WaitSettled(t, 3, 90*time.Second)
	pr := harness.StartProber(t, c, p, 50*time.Millisecond)
	pr.WaitAcks(t, 20, 30*time.Second)

	t0 := time.Now()
	p.Kill9()
	name, gap := pr.WaitNewPrimary(t, t0, p.Name, 60*time.Second)
	t.Logf("kill -9 of %s: %s took over; write gap %s", p.Name, name, gap)
	np := c.Node(name)
	pr.WaitAcks(t, 20, 30*time.Second)
	p.Start()
	c.WaitSettled(t, 3, 90*time.Second)
	pr.Stop()
	checked, lost := pr.Verify(t, np)
	t.Logf("writes checked %d, lost %d, split-brain rounds %d", checked, lost, len(pr.Splits()))
	if s := pr.Splits(); len(s) > 0 {
		t.Errorf("two nodes acknowledged writes in the same round: %v", s)
	}
	if st, _ := p.Status(); st.Role != "replica" {
		t.Errorf("old primary %s rejoined as %q, want replica", p.Name, st.Role)
	}
}

// TestFrozenSupervisorIsFenced stops the primary's mysqlpilot only (its mariadbd keeps
// running): the in-server watchdog must turn it read-only before another node can take the
// lock, and after SIGCONT it rejoins as a replica.
func TestFrozenSupervisorIsFenced(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{})
	p := c.WaitSettled(t, 3, 90*time.Second)
	pr := harness.StartProber(t, c, p, 50*time.Millisecond)
	pr.WaitAcks(t, 20, 30*time.Second)

	t0 := time.Now()
	p.Signal(syscall.SIGSTOP)
	name, gap := pr.WaitNewPrimary(t, t0, p.Name, 60*time.Second)
	t.Logf("SIGSTOP of %s's mysqlpilot: %s took over; write gap %s", p.Name, name, gap)
	pr.WaitAcks(t, 20, 30*time.Second)
	p.Signal(syscall.SIGCONT)
	np := c.WaitSettled(t, 3, 90*time.Second)
	pr.Stop()
	if s := pr.Splits(); len(s) > 0 {
		t.Fatalf("two nodes acknowledged writes in the same round: %v", s)
	}
	if np == p {
		t.Fatalf("the frozen node is primary again")
	}
	checked, lost := pr.Verify(t, np)
	t.Logf("writes checked %d, lost %d, split-brain rounds 0", checked, lost)
	if !strings.Contains(p.Log(), "fence") && !strings.Contains(p.Log(), "Fence") {
		t.Logf("note: %s fenced by its in-server watchdog only", p.Name)
	}
}

// TestGracefulHandover sends SIGTERM (docker stop) to the primary: it fences, lets a replica
// catch up, releases the lock, and exits 0; a replica accepts writes at once. With semi-sync
// (the product's default): the new primary's commits wait for the third node, which repoints
// within the same watch wake-up (measured here: ~0.1 s gap).
func TestGracefulHandover(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{SemiSync: true})
	p := c.WaitSettled(t, 3, 90*time.Second)
	pr := harness.StartProber(t, c, p, 50*time.Millisecond)
	pr.WaitAcks(t, 20, 30*time.Second)

	t0 := time.Now()
	p.Signal(syscall.SIGTERM)
	name, gap := pr.WaitNewPrimary(t, t0, p.Name, 30*time.Second)
	if code := p.Wait(60 * time.Second); code != 0 {
		t.Errorf("mysqlpilot exited %d after SIGTERM, want 0", code)
	}
	t.Logf("SIGTERM of %s: %s took over; write gap %s", p.Name, name, gap)
	pr.WaitAcks(t, 20, 30*time.Second)
	pr.Stop()
	np := c.Node(name)
	checked, lost := pr.Verify(t, np)
	t.Logf("writes checked %d, lost %d", checked, lost)
	if s := pr.Splits(); len(s) > 0 {
		t.Errorf("split brain: %v", s)
	}
	if !strings.Contains(p.Log(), "handed over") {
		t.Errorf("%s's log does not say it handed over", p.Name)
	}
	for id := range agentServices(t, c) {
		if strings.HasSuffix(id, "-"+p.Name) {
			t.Errorf("service %s still registered after %s stopped", id, p.Name)
		}
	}
}

// TestSwitchoverAndMaintenance: an operator moves the primary role without stopping anything,
// then pauses automatic failover.
func TestSwitchoverAndMaintenance(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{})
	p := c.WaitSettled(t, 3, 90*time.Second)
	target := others(c, p)[0]
	if out, err := p.Control("switchover", "--to", target.Name); err != nil {
		t.Fatalf("switchover: %v\n%s", err, out)
	}
	harness.Eventually(t, 30*time.Second, target.Name+" primary", func() bool { return c.Primary() == target })
	c.WaitSettled(t, 3, 60*time.Second)

	if out, err := target.Control("maintenance", "on"); err != nil {
		t.Fatalf("maintenance on: %v\n%s", err, out)
	}
	target.Kill9()
	// With the lock free and maintenance on, the others must say so and not promote.
	harness.Eventually(t, 30*time.Second, "a replica reporting maintenance", func() bool {
		for _, n := range others(c, target) {
			if st, ok := n.Status(); ok && strings.Contains(st.Action, "maintenance") {
				return true
			}
		}
		return false
	})
	if c.Primary() != nil {
		t.Fatalf("a node promoted itself during maintenance")
	}
	if out, err := others(c, target)[0].Control("maintenance", "off"); err != nil {
		t.Fatalf("maintenance off: %v\n%s", err, out)
	}
	harness.Eventually(t, 60*time.Second, "a new primary after maintenance off", func() bool { return c.Primary() != nil })
}

// TestConsulOutage stops Consul for 30 s: the primary fences (it cannot prove it holds the
// lock), nobody else promotes, and when Consul is back (empty: a dev agent) the group
// converges on one primary without a failover storm.
func TestConsulOutage(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{})
	p := c.WaitSettled(t, 3, 90*time.Second)
	exec(t, p, `CREATE TABLE t (id INT PRIMARY KEY)`)
	exec(t, p, `INSERT INTO t VALUES (1)`)
	c.Consul.Stop()
	harness.Eventually(t, 15*time.Second, "the primary fencing itself", func() bool {
		st, ok := p.Status()
		return ok && !st.Writable
	})
	time.Sleep(30 * time.Second) // the outage itself
	c.Consul.Start()
	np := c.WaitSettled(t, 3, 90*time.Second)
	t.Logf("primary before the outage %s, after %s", p.Name, np.Name)
	if np != p {
		t.Errorf("Consul outage moved the primary from %s to %s (ties should go to the last leader)", p.Name, np.Name)
	}
	n, err := count(np, `SELECT COUNT(*) FROM t`)
	if err != nil || n != 1 {
		t.Errorf("rows after outage: %d, %v", n, err)
	}
}

// TestWrongReplicationPassword: a node with the wrong replication password says so in its
// status and log, keeps running and touches no data.
func TestWrongReplicationPassword(t *testing.T) {
	// With replication in plain TCP, the account is what the password meets: the node keeps
	// running and reports the primary's refusal.
	t.Run("tls off: keeps running, reports access denied", func(t *testing.T) {
		c := harness.StartCluster(t, harness.ClusterOptions{Nodes: 2, Mutate: func(i int, cfg map[string]any) {
			m := cfg["mysql"].(map[string]any)
			m["tls"] = map[string]any{"mode": "off"}
			if i == 3 {
				m["replPassword"] = "wrong-password"
			}
		}})
		// Added once the others settled, so it must replicate (started with them, it could win
		// the first election: its server was sometimes up first).
		c.WaitSettled(t, 2, 90*time.Second)
		bad := c.AddNode()
		harness.Eventually(t, 90*time.Second, "the bad node reporting access denied", func() bool {
			st, ok := bad.Status()
			return ok && strings.Contains(strings.ToLower(st.Error+st.Action), "access denied")
		})
		st, _ := bad.Status()
		t.Logf("status of %s: healthy=%v action=%q", bad.Name, st.Healthy, st.Action)
		if st.Healthy {
			t.Errorf("a replica that cannot replicate reports healthy")
		}
		if !bad.Running() {
			t.Errorf("mysqlpilot exited instead of reporting the error")
		}
	})
	// With mysql.tls auto (the default) the password seals the cluster CA's key: a node whose
	// password does not open it cannot issue itself a certificate and refuses to start, naming
	// the setting, before its server ever runs.
	t.Run("tls auto: refuses to start, naming the setting", func(t *testing.T) {
		c := harness.StartCluster(t, harness.ClusterOptions{Nodes: 2, Mutate: func(i int, cfg map[string]any) {
			if i == 3 {
				cfg["mysql"].(map[string]any)["replPassword"] = "wrong-password"
			}
		}})
		c.WaitSettled(t, 2, 90*time.Second)
		bad := c.AddNode()
		if code := bad.Wait(60 * time.Second); code <= 0 {
			t.Fatalf("exit code %d, want non-zero", code)
		}
		log := bad.Log()
		if !strings.Contains(log, "does not open with this node's replication password") || !strings.Contains(log, "MYSQL_REPL_PASSWORD") {
			t.Errorf("log does not explain the failure:\n%s", log)
		}
		if _, err := os.Stat(filepath.Join(bad.Dir, "data", "mysql")); err == nil {
			t.Errorf("the datadir was initialized: the node got further than it should")
		}
		if strings.Contains(log, "wrong-password") {
			t.Error("the password is in the log")
		}
	})
}

// TestMysqldFailsToStart: a server that cannot start is a clear error and a non-zero exit.
func TestMysqldFailsToStart(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{Nodes: 1, Mutate: func(i int, cfg map[string]any) {
		cfg["mysql"].(map[string]any)["exec"] = []string{"mariadbd", "--user=root", "--no-such-option"}
	}})
	n := c.Nodes[0]
	code := n.Wait(120 * time.Second)
	if code <= 0 {
		t.Fatalf("exit code %d, want non-zero", code)
	}
	if !strings.Contains(n.Log(), "mysqld exited during start") {
		t.Errorf("log does not explain the failure:\n%s", n.Log())
	}
}

// TestMysqldCrash kills only the primary's mariadbd: mysqlpilot leaves the cluster (releasing
// its lock) and exits with mysqld's status, and a replica takes over.
func TestMysqldCrash(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{})
	p := c.WaitSettled(t, 3, 90*time.Second)
	pr := harness.StartProber(t, c, p, 50*time.Millisecond)
	pr.WaitAcks(t, 20, 30*time.Second)
	t0 := time.Now()
	if err := syscall.Kill(p.MySQLPid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(60 * time.Second); code != 137 {
		t.Errorf("mysqlpilot exit code %d after mysqld was killed, want 137 (128+SIGKILL)", code)
	}
	name, gap := pr.WaitNewPrimary(t, t0, p.Name, 60*time.Second)
	t.Logf("mysqld of %s killed: %s took over; write gap %s", p.Name, name, gap)
	pr.WaitAcks(t, 20, 30*time.Second)
	pr.Stop()
	checked, lost := pr.Verify(t, c.Node(name))
	t.Logf("writes checked %d, lost %d", checked, lost)
}

// TestScaleOutFromSnapshot: the primary snapshots itself (the cluster has none yet); a node
// added later restores that snapshot, sets its GTID position from the backup, replicates the
// rows written after it, and only then reports healthy.
func TestScaleOutFromSnapshot(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{Nodes: 2, Snapshots: true})
	p := c.WaitSettled(t, 2, 90*time.Second)
	exec(t, p, `CREATE TABLE s (id INT PRIMARY KEY)`)
	exec(t, p, `INSERT INTO s VALUES (1), (2)`)
	harness.Eventually(t, 120*time.Second, "the primary's first snapshot", func() bool {
		return strings.Contains(p.Log(), "snapshot published") || strings.Contains(p.Log(), "backup complete")
	})
	exec(t, p, `INSERT INTO s VALUES (3)`) // after the snapshot: must arrive by replication
	n := c.AddNode()
	c.WaitSettled(t, 3, 180*time.Second)
	if !strings.Contains(n.Log(), "restoring the latest snapshot") {
		t.Errorf("%s did not bootstrap from the snapshot:\n%s", n.Name, n.Log())
	}
	harness.Eventually(t, 30*time.Second, "all rows on the new node", func() bool {
		k, err := count(n, `SELECT COUNT(*) FROM s`)
		return err == nil && k == 3
	})
	// The harness seals snapshots (snapshot.encrypt.key from SNAPSHOT_KEY): the bootstrap
	// opened a sealed one, and the key shows nowhere.
	if !strings.Contains(p.Log(), "encrypted=true") {
		t.Errorf("the primary's backup was not sealed:\n%s", p.Log())
	}
	c.AssertNoSecrets(t)
}

// TestErrantNodeReseeds: a replica with a transaction the primary never had (written by root,
// which MariaDB lets through read_only) is refused by the primary when it reconnects; it
// quarantines itself, exits asking for a re-seed, and on restart restores the latest snapshot
// (its old datadir kept aside) and replicates again.
func TestErrantNodeReseeds(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{Nodes: 2, Snapshots: true})
	p := c.WaitSettled(t, 2, 90*time.Second)
	exec(t, p, `CREATE TABLE e (id INT PRIMARY KEY)`)
	exec(t, p, `INSERT INTO e VALUES (1)`)
	harness.Eventually(t, 120*time.Second, "the primary's first snapshot", func() bool {
		return strings.Contains(p.Log(), "snapshot published")
	})
	r := others(c, p)[0]
	harness.Eventually(t, 30*time.Second, "row 1 on the replica", func() bool {
		k, err := count(r, `SELECT COUNT(*) FROM e`)
		return err == nil && k == 1
	})
	root, err := sql.Open("mysql", fmt.Sprintf("root:%s@tcp(127.0.0.1:%d)/%s", harness.RootPassword, r.Port, harness.AppDatabase))
	if err != nil {
		t.Fatal(err)
	}
	var oldID int
	if err := root.QueryRow(`SELECT @@server_id`).Scan(&oldID); err != nil {
		t.Fatal(err)
	}
	// A row the primary writes after the snapshot under r's server_id, as if r had written it
	// while it was primary (before r's errant write, which must stay ahead of it: MariaDB
	// takes a primary with a higher sequence number from the same server_id as having r's
	// transaction). A server skips replicated events with its own server_id, so r
	// gets it back after the re-seed only under a new one.
	proot, err := sql.Open("mysql", fmt.Sprintf("root:%s@tcp(127.0.0.1:%d)/%s", harness.RootPassword, p.Port, harness.AppDatabase))
	if err != nil {
		t.Fatal(err)
	}
	proot.SetMaxOpenConns(1)
	for _, q := range []string{fmt.Sprintf(`SET SESSION server_id = %d`, oldID), `INSERT INTO e VALUES (3)`} {
		if _, err := proot.Exec(q); err != nil {
			t.Fatalf("%s on %s: %v", q, p.Name, err)
		}
	}
	var pos string
	if err := proot.QueryRow(`SELECT @@GLOBAL.gtid_binlog_pos`).Scan(&pos); err != nil {
		t.Fatal(err)
	}
	proot.Close()
	harness.Eventually(t, 30*time.Second, r.Name+" reached the primary's position "+pos, func() bool {
		var cur string
		return root.QueryRow(`SELECT @@GLOBAL.gtid_slave_pos`).Scan(&cur) == nil && cur == pos
	})
	if _, err := root.Exec(`INSERT INTO e VALUES (99)`); err != nil {
		t.Fatalf("errant write as root on %s: %v", r.Name, err)
	}
	root.Close()

	r.Kill9()
	r.Start()
	if code := r.Wait(120 * time.Second); code != 75 {
		t.Fatalf("%s exited %d, want 75 (re-seed requested):\n%s", r.Name, code, r.Log())
	}
	if !strings.Contains(r.Log(), "QUARANTINED") {
		t.Errorf("%s did not say it was quarantined", r.Name)
	}
	r.Start()
	c.WaitSettled(t, 2, 180*time.Second)
	if !strings.Contains(r.Log(), "node re-seeded") {
		t.Errorf("%s did not re-seed:\n%s", r.Name, r.Log())
	}
	k, err := count(r, `SELECT COUNT(*) FROM e WHERE id = 99`)
	if err != nil || k != 0 {
		t.Errorf("errant row still on %s after re-seed: %d, %v", r.Name, k, err)
	}
	harness.Eventually(t, 30*time.Second, "the row written after the snapshot under the node's old server_id, on the re-seeded node", func() bool {
		k, err := count(r, `SELECT COUNT(*) FROM e WHERE id = 3`)
		return err == nil && k == 1
	})
	if newID, err := count(r, `SELECT @@server_id`); err != nil || newID == oldID {
		t.Errorf("%s kept server_id %d after the re-seed (now %d, %v)", r.Name, oldID, newID, err)
	}
	old, _ := filepath.Glob(filepath.Join(r.Dir, "data.old-*"))
	if len(old) != 1 {
		t.Errorf("old datadir not kept aside: %v", old)
	}
}

// TestSemiSyncAdaptive: with ha.semiSync (adaptive, the default), a primary alone commits
// alone; once another node could be promoted, its commits wait for a replica's
// acknowledgement; when that node leaves, it commits alone again instead of stopping writes.
func TestSemiSyncAdaptive(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{Nodes: 1, SemiSync: true})
	p := c.WaitSettled(t, 1, 90*time.Second)
	semi := func() int {
		v, err := count(p, `SELECT @@GLOBAL.rpl_semi_sync_master_enabled`)
		if err != nil {
			return -1
		}
		return v
	}
	acked := func() int {
		v, _ := count(p, `SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_YES_TX'`)
		return v
	}
	harness.Eventually(t, 10*time.Second, "semi-sync off on a primary alone", func() bool { return semi() == 0 })
	execWithin(t, p, `CREATE TABLE ss (id INT PRIMARY KEY)`, 10*time.Second)

	r := c.AddNode()
	c.WaitSettled(t, 2, 90*time.Second)
	harness.Eventually(t, 10*time.Second, "semi-sync on once "+r.Name+" could be promoted", func() bool { return semi() == 1 })
	before := acked()
	execWithin(t, p, `INSERT INTO ss VALUES (1)`, 10*time.Second)
	if after := acked(); after <= before {
		t.Errorf("the insert was not acknowledged by a replica: Rpl_semi_sync_master_yes_tx %d -> %d", before, after)
	}

	r.Signal(syscall.SIGTERM)
	if code := r.Wait(90 * time.Second); code != 143 && code != 0 {
		t.Errorf("%s exited %d after SIGTERM", r.Name, code)
	}
	harness.Eventually(t, 20*time.Second, "semi-sync off again once "+r.Name+" left", func() bool { return semi() == 0 })
	execWithin(t, p, `INSERT INTO ss VALUES (2)`, 10*time.Second) // acknowledged by p alone

	// p dies holding the only copy of row 2: r, back, must not take over (and lose it) but
	// wait for p; p returns, stays primary, and r gets the row.
	p.Kill9()
	r.Start()
	harness.Eventually(t, 60*time.Second, r.Name+" waits for "+p.Name+" instead of taking over", func() bool {
		st, ok := r.Status()
		return ok && strings.Contains(st.Action, "may have acknowledged writes no replica has")
	})
	if st, _ := r.Status(); st.Role == "primary" || st.Writable {
		t.Fatalf("%s took over from a primary that committed alone: %+v", r.Name, st)
	}
	p.Start()
	if got := c.WaitSettled(t, 2, 120*time.Second); got.Name != p.Name {
		t.Errorf("primary after %s came back: %s, want %s", p.Name, got.Name, p.Name)
	}
	harness.Eventually(t, 30*time.Second, "row 2, acknowledged by "+p.Name+" alone, on "+r.Name, func() bool {
		k, err := count(r, `SELECT COUNT(*) FROM ss WHERE id = 2`)
		return err == nil && k == 1
	})
}

// execWithin runs q on n and fails the test if it does not return within d (a commit
// waiting for an acknowledgement that never comes).
func execWithin(t *testing.T, n *harness.PilotNode, q string, d time.Duration) {
	t.Helper()
	db := n.DB()
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s on %s (within %s): %v", q, n.Name, d, err)
	}
}

// TestRestoreDrillOnReplica: with restore drills on, the replica (never the primary) restores
// the primary's first snapshot into scratch space, checks it with a throw-away server run by
// its supervisor, and records verifiedAt on the snapshot's records; status --cluster says so,
// /metrics counts it, and no secret shows anywhere (the throw-away server's argv included).
func TestRestoreDrillOnReplica(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{Nodes: 2, Snapshots: true, Drills: true})
	p := c.WaitSettled(t, 2, 90*time.Second)
	exec(t, p, `CREATE TABLE d (id INT PRIMARY KEY)`)
	exec(t, p, `INSERT INTO d VALUES (1), (2)`)
	r := others(c, p)[0]
	var latest struct {
		ID          string    `json:"id"`
		VerifiedAt  time.Time `json:"verifiedAt"`
		VerifyError string    `json:"verifyError"`
	}
	took := harness.Eventually(t, 150*time.Second, "the latest snapshot drilled", func() bool {
		v, ok := c.KV("snapshots/latest")
		return ok && json.Unmarshal([]byte(v), &latest) == nil && !latest.VerifiedAt.IsZero()
	})
	if latest.VerifyError != "" {
		t.Fatalf("the drill of %s failed: %s\n%s", latest.ID, latest.VerifyError, r.Log())
	}
	if v, ok := c.KV("snapshots/" + latest.ID); !ok || !strings.Contains(v, `"verifiedAt"`) {
		t.Errorf("snapshots/%s lacks verifiedAt: %s", latest.ID, v)
	}
	if !strings.Contains(r.Log(), "restore drill passed") || strings.Contains(p.Log(), "restore drill started") {
		t.Errorf("the drill did not run on the replica %s alone:\n%s", r.Name, r.Log())
	}
	// status --cluster shows the primary's last cycle's view: it catches up with the record
	// within a cycle, not at the instant the replica wrote it.
	var out string
	shown := func() bool {
		var err error
		out, err = p.Control("status", "--cluster")
		if err != nil && !strings.Contains(out, "drill:") {
			t.Fatalf("status --cluster: %v\n%s", err, out)
		}
		return strings.Contains(out, "snapshot: "+latest.ID) && strings.Contains(out, "drill:    verified at")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !shown() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !shown() {
		t.Errorf("status --cluster does not show the drill within 10s:\n%s", out)
	}
	resp, err := http.Get("http://" + r.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "mysqlpilot_snapshot_verify_runs_total 1") || !strings.Contains(string(body), `mysqlpilot_snapshot_verify_state{state="verified"} 1`) {
		t.Errorf("/metrics of %s:\n%s", r.Name, body)
	}
	t.Logf("the first snapshot drilled %.1fs after the cluster settled; the drill: %s", took.Seconds(), grepLine(r.Log(), "restore drill passed"))
	c.AssertNoSecrets(t)
}

func grepLine(log, what string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, what) {
			return l
		}
	}
	return ""
}
