//go:build integration

package snapshot_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/cluster"
	"github.com/mysqlpilot/mysqlpilot/internal/config"
	"github.com/mysqlpilot/mysqlpilot/internal/consul"
	"github.com/mysqlpilot/mysqlpilot/internal/control"
	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

const snapRootPW = `r00t'"pw\#`

var snapUsers = mysql.Users{RootPassword: snapRootPW, ReplUser: "repl", ReplPassword: "repl-pw"}

func snapCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type snapNode struct {
	srv *harness.MariaDB
	db  *mysql.DB
}

func startSnapNode(t *testing.T, id int) *snapNode {
	t.Helper()
	n := &snapNode{srv: harness.StartMariaDB(t, harness.MariaDBOptions{ServerID: id, RootPassword: snapRootPW})}
	n.open(t)
	t.Cleanup(func() {
		if n.db != nil {
			n.db.Close()
		}
	})
	return n
}

func (n *snapNode) open(t *testing.T) {
	t.Helper()
	db, err := mysql.Open(snapCtx(t), mysql.Conn{Flavor: mysql.MariaDB, Socket: n.srv.Socket(), Password: snapRootPW})
	if err != nil {
		t.Fatal(err)
	}
	n.db = db
}

func (n *snapNode) exec(t *testing.T, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := n.db.SQL().ExecContext(snapCtx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func (n *snapNode) count(t *testing.T) int {
	t.Helper()
	var c int
	if err := n.db.SQL().QueryRowContext(snapCtx(t), "SELECT COUNT(*) FROM app.t").Scan(&c); err != nil {
		return -1
	}
	return c
}

// snapFixture is a Consul agent, a writable primary with table app.t, and a config for a
// snapshotter on that primary storing to a local directory.
type snapFixture struct {
	consul     *consul.Client
	consulAddr string
	p          *snapNode
	cfg        *config.Config
	s          *snapshot.Snapshotter
}

func newSnapFixture(t *testing.T) *snapFixture {
	t.Helper()
	ctx := snapCtx(t)
	h := harness.StartConsul(t)
	c, err := consul.New(consul.Options{Address: h.HTTPAddr()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	p := startSnapNode(t, 1)
	if err := p.db.Bootstrap(ctx, snapUsers); err != nil {
		t.Fatal(err)
	}
	if err := p.db.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	p.exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO app.t (v) VALUES ('a'), ('b'), ('c')")
	cfg := config.Default()
	cfg.Node = "node1"
	cfg.Consul.Prefix = "service/mysql/"
	cfg.MySQL.Socket = p.srv.Socket()
	cfg.MySQL.RootPassword = snapRootPW
	cfg.MySQL.Exec = []string{"mariadbd"}
	cfg.Snapshot.Backend = "local"
	cfg.Snapshot.Keep = 2
	cfg.Storage.Local.Dir = filepath.Join(t.TempDir(), "snapshots")
	// node1 is the primary: only the leader lock's holder publishes snapshots.
	sess, err := c.CreateSession(ctx, consul.SessionOptions{Name: "leader node1", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Acquire(ctx, cfg.Consul.Prefix+"leader", sess, []byte(`{"node":"node1"}`)); err != nil || !ok {
		t.Fatalf("acquire the leader lock as node1: %v %v", ok, err)
	}
	s, err := newSnapshotter(cfg, c, supervisor.ExecRunner{}, testLog(t))
	if err != nil || s == nil {
		t.Fatalf("newSnapshotter: %v, %v", s, err)
	}
	cfg.Consul.Address = h.HTTPAddr()
	return &snapFixture{consul: c, consulAddr: h.HTTPAddr(), p: p, cfg: cfg, s: s}
}

// newSnapshotter is the node's snapshotter over the Consul catalog, as the node wires it.
func newSnapshotter(cfg *config.Config, c *consul.Client, runner supervisor.Runner, log *slog.Logger) (*snapshot.Snapshotter, error) {
	cat := cluster.NewCatalog(c, cfg.Consul.Prefix, cfg.Node, log.With("component", "snapshot"))
	return snapshot.NewSnapshotter(cfg, mysql.MariaDB, cat, runner, log)
}

// unfinishedBootstrap is the Bootstrap the node would finish at its next start, read from the
// datadir's restore state as the node reads it.
func unfinishedBootstrap(datadir string) (*snapshot.Bootstrap, error) {
	st, err := snapshot.ReadRestoreState(datadir)
	if err != nil {
		return nil, err
	}
	return snapshot.PendingBootstrap(st), nil
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(snapTestWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type snapTestWriter struct{ t *testing.T }

func (w snapTestWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (f *snapFixture) key(t *testing.T, k string) *consul.KV {
	t.Helper()
	kv, _, err := f.consul.Get(snapCtx(t), f.cfg.Consul.Prefix+k)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestSnapshot_BackupPublishesBootstrapsAndPrunes: a backup is published in Consul with the
// DESIGN.md layout, a node with an empty datadir bootstraps from it and catches up, the lock
// keeps backups apart, and retention prunes the oldest.
func TestSnapshot_BackupPublishesBootstrapsAndPrunes(t *testing.T) {
	ctx := snapCtx(t)
	f := newSnapFixture(t)
	rec1, err := f.s.BackupNow(ctx, f.p.db, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"snapshots/" + rec1.ID, "snapshots/latest"} {
		kv := f.key(t, k)
		if kv == nil {
			t.Fatalf("%s not in Consul", k)
		}
		var got snapshot.Record
		if err := json.Unmarshal(kv.Value, &got); err != nil || got != rec1 {
			t.Fatalf("%s = %s (%v), want %+v", k, kv.Value, err, rec1)
		}
		if strings.Contains(string(kv.Value), snapRootPW) {
			t.Fatalf("%s holds the root password", k)
		}
	}
	if _, err := os.Stat(filepath.Join(f.cfg.Storage.Local.Dir, rec1.Path)); err != nil {
		t.Fatal(err)
	}

	// Another node holds the backup lock: this one refuses.
	other := cluster.NewCatalog(f.consul, f.cfg.Consul.Prefix, "node9", discard())
	unlock, err := other.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.BackupNow(ctx, f.p.db, ""); !errors.Is(err, snapshot.ErrLocked) || !strings.Contains(err.Error(), "node9") {
		t.Fatalf("backup while node9 holds the lock = %v", err)
	}
	unlock()

	// Rows after the snapshot, then a node with an empty datadir bootstraps from it.
	f.p.exec(t, "INSERT INTO app.t (v) VALUES ('d'), ('e')")
	r := startSnapNode(t, 2)
	r.db.Close()
	r.db = nil
	r.srv.Stop()
	if err := os.Rename(r.srv.Datadir(), r.srv.Datadir()+".init"); err != nil {
		t.Fatal(err)
	}
	cfg2 := *f.cfg
	cfg2.Node = "node2"
	cfg2.MySQL.Datadir = r.srv.Datadir()
	cfg2.Snapshot.TempDir = filepath.Join(t.TempDir(), "restore")
	s2, err := newSnapshotter(&cfg2, f.consul, supervisor.ExecRunner{}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s2.BootstrapReplica(ctx)
	if err != nil || b == nil {
		t.Fatalf("BootstrapReplica = %+v, %v", b, err)
	}
	if b.Record.ID != rec1.ID || b.Result.GTID != rec1.GTID {
		t.Fatalf("bootstrapped from %+v", b)
	}
	if again, err := s2.BootstrapReplica(ctx); err != nil || again != nil {
		t.Fatalf("a second BootstrapReplica on an initialized datadir = %+v, %v; want nothing", again, err)
	}
	// The datadir says it was restored, not yet finished: a node stopped here finishes it
	// at its next start instead of replicating from nothing.
	if u, err := unfinishedBootstrap(cfg2.MySQL.Datadir); err != nil || u == nil || u.Record.ID != rec1.ID || u.Result.GTID != rec1.GTID {
		t.Fatalf("unfinished bootstrap of the restored datadir = %+v, %v", u, err)
	}
	r.srv.Start()
	r.open(t)
	if err := b.Finish(ctx, r.db, cfg2.MySQL.Datadir); err != nil {
		t.Fatal(err)
	}
	if u, err := unfinishedBootstrap(cfg2.MySQL.Datadir); err != nil || u != nil {
		t.Fatalf("unfinished bootstrap after Finish = %+v, %v", u, err)
	}
	if st, err := snapshot.ReadRestoreState(cfg2.MySQL.Datadir); err != nil || st == nil || st.Snapshot != rec1.ID || !st.Finished {
		t.Fatalf("restore state after Finish = %+v, %v", st, err)
	}
	if err := r.db.ChangePrimary(ctx, mysql.Primary{Host: "127.0.0.1", Port: f.p.srv.Port(), User: snapUsers.ReplUser, Password: snapUsers.ReplPassword},
		mysql.ChangePrimaryOptions{ConnectRetry: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := r.db.StartReplica(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the bootstrapped replica has the 5 rows", func() bool { return r.count(t) == 5 })

	// Two more backups with keep=2: the first is pruned from Consul and the store.
	rec2, err := f.s.BackupNow(ctx, f.p.db, "")
	if err != nil {
		t.Fatal(err)
	}
	rec3, err := f.s.BackupNow(ctx, f.p.db, "")
	if err != nil {
		t.Fatal(err)
	}
	if f.key(t, "snapshots/"+rec1.ID) != nil {
		t.Error("pruned snapshot still in Consul")
	}
	if _, err := os.Stat(filepath.Join(f.cfg.Storage.Local.Dir, rec1.Path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pruned snapshot object still stored: %v", err)
	}
	recs, _ := f.s.Catalog().List(ctx)
	if len(recs) != 2 || recs[0].ID != rec2.ID || recs[1].ID != rec3.ID {
		t.Errorf("catalog after prune: %+v", recs)
	}

	// The replica gets an errant transaction and is re-seeded from the latest snapshot; its
	// old datadir is kept aside.
	r.exec(t, "STOP SLAVE", "SET GLOBAL read_only = OFF", "INSERT INTO app.t (v) VALUES ('errant')")
	f.p.exec(t, "INSERT INTO app.t (v) VALUES ('f')")
	r.db.Close()
	r.db = nil
	r.srv.Stop()
	b2, err := s2.Reseed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b2.Record.ID != rec3.ID || b2.Result.MovedAside == "" {
		t.Fatalf("re-seeded from %s, old datadir kept at %q", b2.Record.ID, b2.Result.MovedAside)
	}
	r.srv.Start()
	r.open(t)
	if err := b2.Finish(ctx, r.db, cfg2.MySQL.Datadir); err != nil {
		t.Fatal(err)
	}
	if err := r.db.ChangePrimary(ctx, mysql.Primary{Host: "127.0.0.1", Port: f.p.srv.Port(), User: snapUsers.ReplUser, Password: snapUsers.ReplPassword},
		mysql.ChangePrimaryOptions{ConnectRetry: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := r.db.StartReplica(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the re-seeded replica has the primary's 6 rows and not the errant one", func() bool { return r.count(t) == 6 })
}

// TestBackup_ControlHandler serves POST /backup as the control socket does.
func TestBackup_ControlHandler(t *testing.T) {
	f := newSnapFixture(t)
	srv := httptest.NewServer(control.BackupHandler(func(id string) (snapshot.Record, error) { return f.s.BackupNow(snapCtx(t), f.p.db, id) }, discard()))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/backup", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var br control.BackupResponse
	if err := json.NewDecoder(resp.Body).Decode(&br); err != nil || resp.StatusCode != http.StatusOK || br.Record == nil || br.Status != "complete" {
		t.Fatalf("POST /backup: %d %+v %v", resp.StatusCode, br, err)
	}
	if f.key(t, "snapshots/"+br.ID) == nil {
		t.Fatalf("snapshot %s not published", br.ID)
	}
	g, err := http.Get(srv.URL + "/backup")
	if err != nil {
		t.Fatal(err)
	}
	g.Body.Close()
	if g.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /backup = %d", g.StatusCode)
	}
	// While this node backs up, a second request is refused with 409.
	f.s.Busy().Lock()
	resp2, err := http.Post(srv.URL+"/backup?wait=false", "", nil)
	f.s.Busy().Unlock()
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusConflict {
		t.Errorf("POST /backup while busy = %d, want 409", resp2.StatusCode)
	}
}

// TestSnapshot_SchedulerIntervalRotationAndBinlogArchive runs the scheduler on a primary: it
// takes the first snapshot at once, archives binlogs (recording binlogs/last), does not treat
// its own flushes as rotations, and snapshots again when the server rotates its binlog.
func TestSnapshot_SchedulerIntervalRotationAndBinlogArchive(t *testing.T) {
	ctx := snapCtx(t)
	f := newSnapFixture(t)
	f.cfg.Snapshot.Interval = config.Duration{Duration: time.Hour}
	f.cfg.Snapshot.BinlogFlushInterval = config.Duration{Duration: time.Second}
	f.cfg.Snapshot.OnBinlogRotate = true
	f.cfg.Snapshot.Keep = 10
	sc := f.s.NewScheduler(f.p.db)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); sc.Run(runCtx, func() bool { return true }) }()
	defer func() { stop(); <-done }()

	count := func() int { recs, _ := f.s.Catalog().List(ctx); return len(recs) }
	waitFor(t, 30*time.Second, "the first scheduled snapshot", func() bool { return count() == 1 })
	waitFor(t, 30*time.Second, "binlogs/last", func() bool { return f.key(t, "binlogs/last") != nil })
	// Several archive flushes go by: no rotation snapshot.
	var p snapshot.BinlogProgress
	waitFor(t, 30*time.Second, "three archive runs", func() bool {
		kv := f.key(t, "binlogs/last")
		if kv == nil || json.Unmarshal(kv.Value, &p) != nil {
			return false
		}
		var n int
		_, err := fmt.Sscanf(p.File[strings.LastIndexByte(p.File, '.')+1:], "%d", &n)
		return err == nil && n >= 4
	})
	if n := count(); n != 1 {
		t.Fatalf("%d snapshots after the scheduler's own flushes, want 1", n)
	}
	// The server rotates by itself (max_binlog_size reached).
	f.p.exec(t, "SET GLOBAL max_binlog_size = 4096")
	for range 20 {
		f.p.exec(t, "INSERT INTO app.t (v) VALUES (REPEAT('x', 20))")
	}
	waitFor(t, 30*time.Second, "a snapshot after the binlog rotated", func() bool { return count() >= 2 })
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond) // polling an outside condition with a deadline
	}
}

// TestPITR_PointInTimeRestoreFromConfig is `mysqlpilot restore --to-time`: from the config's
// store and the Consul catalog into a new datadir, which a server then runs with exactly the
// rows written before the target.
func TestPITR_PointInTimeRestoreFromConfig(t *testing.T) {
	ctx := snapCtx(t)
	f := newSnapFixture(t)
	if _, err := f.s.BackupNow(ctx, f.p.db, ""); err != nil {
		t.Fatal(err)
	}
	f.p.exec(t, "INSERT INTO app.t (v) VALUES ('d')")
	target := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(target) + 50*time.Millisecond) // binlog timestamps have one-second resolution
	f.p.exec(t, "INSERT INTO app.t (v) VALUES ('late')")
	if _, err := f.s.ArchiveNow(ctx, f.p.db); err != nil {
		t.Fatal(err)
	}
	if f.key(t, "binlogs/last") == nil {
		t.Fatal("binlogs/last not recorded")
	}

	r := startSnapNode(t, 2)
	r.db.Close()
	r.db = nil
	r.srv.Stop()
	cfg := *f.cfg
	res, err := snapshot.PointInTimeRestore(ctx, &cfg, mysql.MariaDB, snapshot.PITRRequest{Until: target, Datadir: r.srv.Datadir(),
		TempDir: filepath.Join(t.TempDir(), "pitr")}, cluster.NewCatalog(f.consul, cfg.Consul.Prefix, cfg.Node, testLog(t)), supervisor.ExecRunner{}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Restore.MovedAside == "" || len(res.Binlogs) != 1 {
		t.Errorf("result %+v", res)
	}
	r.srv.Start()
	r.open(t)
	if n := r.count(t); n != 4 {
		t.Fatalf("%d rows after restoring to %s, want 4 (a, b, c, d)", n, target)
	}
}
