//go:build integration

package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// Passwords with every character that quoting must survive.
const (
	rootPW = `r00t'"\#; pw`
	appPW  = `app'pw\"x`
	replPW = `repl'"pw\\`
)

var users = mysql.Users{
	RootPassword: rootPW,
	User:         "app", Password: appPW, Database: "app_db",
	ReplUser: "repl", ReplPassword: replPW,
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// node is a started server with a root pool.
type node struct {
	srv *harness.MariaDB
	db  *mysql.DB
}

func startNode(t *testing.T, id int) node {
	t.Helper()
	srv := harness.StartMariaDB(t, harness.MariaDBOptions{ServerID: id, RootPassword: rootPW})
	ctx := testCtx(t)
	db, err := mysql.Open(ctx, mysql.Conn{Flavor: mysql.MariaDB, Socket: srv.Socket(), Password: rootPW,
		PasswordSource: "MYSQL_ROOT_PASSWORD", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return node{srv: srv, db: db}
}

func (n node) primary() mysql.Primary {
	return mysql.Primary{Host: "127.0.0.1", Port: n.srv.Port(), User: users.ReplUser, Password: users.ReplPassword}
}

// appConn opens a plain client pool as the application user over TCP.
func appConn(t *testing.T, n node) *sql.DB {
	t.Helper()
	cfg := mysqldrv.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = users.User, users.Password, "tcp", n.srv.Addr(), users.Database
	cfg.Timeout = 5 * time.Second
	cfg.Logger = &mysqldrv.NopLogger{}
	c, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last error: %v)", what, timeout, lastErr)
		}
		time.Sleep(50 * time.Millisecond) // polling a server condition with a deadline
	}
}

func count(ctx context.Context, db *sql.DB, table string) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n)
	return n, err
}

func executed(t *testing.T, ctx context.Context, n node) mysql.GTIDSet {
	t.Helper()
	st, err := n.db.GTIDState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g, err := mysql.ParseGTIDSet(mysql.MariaDB, st.Executed)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func waitCaughtUp(t *testing.T, ctx context.Context, replica, primary node) {
	t.Helper()
	want := executed(t, ctx, primary)
	eventually(t, 20*time.Second, fmt.Sprintf("server %d catches up with server %d (%s)", replica.srv.ServerID(), primary.srv.ServerID(), want),
		func() (bool, error) {
			st, err := replica.db.GTIDState(ctx)
			if err != nil {
				return false, err
			}
			g, err := mysql.ParseGTIDSet(mysql.MariaDB, st.Executed)
			return err == nil && g.Contains(want), err
		})
}

func follow(t *testing.T, ctx context.Context, replica, primary node) {
	t.Helper()
	if err := replica.db.ChangePrimary(ctx, primary.primary(), mysql.ChangePrimaryOptions{ConnectRetry: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := replica.db.StartReplica(ctx); err != nil {
		t.Fatal(err)
	}
}

// cluster starts n servers, bootstraps the first as primary (writes open), installs the
// watchdog everywhere and points the others at it.
func cluster(t *testing.T, n int) []node {
	t.Helper()
	ctx := testCtx(t)
	var nodes []node
	for i := 1; i <= n; i++ {
		nodes = append(nodes, startNode(t, i))
	}
	p := nodes[0]
	if err := p.db.Bootstrap(ctx, users); err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes {
		if err := nd.db.InstallWatchdog(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.db.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, r := range nodes[1:] {
		follow(t, ctx, r, p)
	}
	return nodes
}

func TestReplicationFailover(t *testing.T) {
	ctx := testCtx(t)
	nodes := cluster(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]

	// Replicas have made no transactions of their own: root password, watchdog and all were
	// written with sql_log_bin=0.
	for _, r := range []node{b, c} {
		if g := executed(t, ctx, r); !executed(t, ctx, a).Contains(g) {
			t.Fatalf("server %d has errant transactions before replicating: %s", r.srv.ServerID(), g)
		}
	}

	app := appConn(t, a)
	for _, q := range []string{"CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO t VALUES (1, 'a'), (2, 'b')"} {
		if _, err := app.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	waitCaughtUp(t, ctx, b, a)
	waitCaughtUp(t, ctx, c, a)
	for _, r := range []node{b, c} {
		if n, err := count(ctx, r.db.SQL(), "app_db.t"); err != nil || n != 2 {
			t.Fatalf("server %d: %d rows, %v; want 2", r.srv.ServerID(), n, err)
		}
	}

	t.Run("replica status", func(t *testing.T) {
		st, err := b.db.ReplicaStatus(ctx)
		if err != nil || st == nil {
			t.Fatalf("ReplicaStatus = %+v, %v", st, err)
		}
		if !st.IORunning || !st.SQLRunning || st.LagSeconds == nil || st.PrimaryHost != "127.0.0.1" ||
			st.PrimaryPort != a.srv.Port() || st.PrimaryServerID != 1 || st.UsingGTID != "Slave_Pos" ||
			st.LastIOError != "" || st.LastSQLError != "" {
			t.Errorf("unexpected status %+v", st)
		}
		want := executed(t, ctx, a).String()
		if st.RetrievedGTID != want || st.ExecutedGTID != want {
			t.Errorf("retrieved %q, executed %q; want both %q", st.RetrievedGTID, st.ExecutedGTID, want)
		}
		if st, err := a.db.ReplicaStatus(ctx); err != nil || st != nil {
			t.Errorf("primary's ReplicaStatus = %+v, %v; want nil, nil", st, err)
		}
		gs, err := b.db.GTIDState(ctx)
		if err != nil || gs.Received != want || gs.Executed != want {
			t.Errorf("GTIDState = %+v, %v; want executed and received %q", gs, err, want)
		}
	})

	t.Run("replicas refuse application writes", func(t *testing.T) {
		_, err := appConn(t, b).ExecContext(ctx, "INSERT INTO t VALUES (3, 'c')")
		var me *mysqldrv.MySQLError
		if !errors.As(err, &me) || me.Number != 1290 {
			t.Fatalf("write on a replica: %v; want error 1290 (read-only)", err)
		}
	})

	t.Run("promote a replica and repoint the others", func(t *testing.T) {
		if _, err := a.db.Fence(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.db.WaitRelayApplied(ctx); err != nil {
			t.Fatal(err)
		}
		if st, _ := b.db.ReplicaStatus(ctx); st == nil || st.IORunning {
			t.Fatalf("after WaitRelayApplied the IO thread should be stopped: %+v", st)
		}
		if err := b.db.ResetReplica(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := b.db.ReplicaStatus(ctx); err != nil || st != nil {
			t.Fatalf("after ResetReplica: %+v, %v; want not a replica", st, err)
		}
		if err := b.db.OpenWrites(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		defer b.db.DisarmWatchdog(ctx)
		follow(t, ctx, c, b)
		follow(t, ctx, a, b) // the old primary had nothing unreplicated: it may follow

		if _, err := appConn(t, b).ExecContext(ctx, "INSERT INTO t VALUES (3, 'from b')"); err != nil {
			t.Fatal(err)
		}
		waitCaughtUp(t, ctx, c, b)
		waitCaughtUp(t, ctx, a, b)
		for _, r := range []node{a, c} {
			if n, err := count(ctx, r.db.SQL(), "app_db.t"); err != nil || n != 3 {
				t.Fatalf("server %d: %d rows, %v; want 3", r.srv.ServerID(), n, err)
			}
		}
		ga, gb, gc := executed(t, ctx, a), executed(t, ctx, b), executed(t, ctx, c)
		if !ga.Equal(gb) || !gc.Equal(gb) {
			t.Errorf("GTID sets differ after failover: a=%s b=%s c=%s", ga, gb, gc)
		}
		t.Logf("after failover all servers at %s", gb)
	})
}

// TestErrantFormerPrimaryIsRefused: a primary that wrote transactions nobody received, then
// lost its role, must not quietly replicate from the new primary.
func TestErrantFormerPrimaryIsRefused(t *testing.T) {
	ctx := testCtx(t)
	nodes := cluster(t, 2)
	a, b := nodes[0], nodes[1]
	app := appConn(t, a)
	if _, err := app.ExecContext(ctx, "CREATE TABLE t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, ctx, b, a)

	// The network splits: b stops receiving; a takes one more write.
	if err := b.db.StopReplica(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := app.ExecContext(ctx, "INSERT INTO t VALUES (100)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.db.Fence(ctx); err != nil {
		t.Fatal(err)
	}
	// b is promoted and takes writes of its own.
	if err := b.db.ResetReplica(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.db.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := appConn(t, b).ExecContext(ctx, fmt.Sprintf("INSERT INTO t VALUES (%d)", i)); err != nil {
			t.Fatal(err)
		}
	}

	ga, gb := executed(t, ctx, a), executed(t, ctx, b)
	errant := ga.Subtract(gb)
	t.Logf("old primary %s, new primary %s, errant %s", ga, gb, errant)
	if errant.IsEmpty() || gb.Contains(ga) {
		t.Fatalf("the old primary's extra write is not seen as errant: a=%s b=%s", ga, gb)
	}

	follow(t, ctx, a, b)
	var st *mysql.ReplicaStatus
	eventually(t, 20*time.Second, "the new primary refuses the old one", func() (bool, error) {
		var err error
		st, err = a.db.ReplicaStatus(ctx)
		return err == nil && st != nil && st.LastIOError != "", err
	})
	t.Logf("IO error %d: %s", st.LastIOErrno, st.LastIOError)
	if st.LastIOErrno != 1236 {
		t.Errorf("Last_IO_Errno = %d, want 1236", st.LastIOErrno)
	}
	if n, err := count(ctx, a.db.SQL(), "app_db.t"); err != nil || n != 1 {
		t.Errorf("old primary has %d rows, %v; want its 1 (nothing replicated over it)", n, err)
	}
}

func TestFence(t *testing.T) {
	ctx := testCtx(t)
	nodes := cluster(t, 2)
	a, b := nodes[0], nodes[1]
	app := appConn(t, a)
	if _, err := app.ExecContext(ctx, "CREATE TABLE t (id INT PRIMARY KEY, v INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := app.ExecContext(ctx, "INSERT INTO t VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, ctx, b, a)

	// Idle application connections, and one in a long write that makes SET GLOBAL read_only
	// wait: Fence must kill it rather than wait for it.
	app.SetMaxIdleConns(10)
	var idle []*sql.Conn
	for range 3 {
		c, err := app.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	longDone := make(chan error, 1)
	go func() {
		_, err := app.ExecContext(ctx, "UPDATE t SET v = SLEEP(30) WHERE id = 1")
		longDone <- err
	}()
	eventually(t, 10*time.Second, "the long write runs", func() (bool, error) {
		var n int
		err := a.db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE t SET v = SLEEP%'").Scan(&n)
		return n == 1, err
	})
	// Several connections of our own pool are open and idle.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = a.db.SQL().ExecContext(ctx, "DO SLEEP(0.2)")
		}()
	}
	wg.Wait()

	start := time.Now()
	killed, err := a.db.Fence(ctx)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Fence killed %d connections in %s", killed, took.Round(time.Millisecond))
	if killed < 4 {
		t.Errorf("killed %d connections, want at least 4 (3 idle, 1 writing)", killed)
	}
	if took > 5*time.Second {
		t.Errorf("Fence took %s: it waited for the long write", took)
	}
	select {
	case err := <-longDone:
		if err == nil {
			t.Error("the long write completed; it should have been killed")
		}
	case <-time.After(10 * time.Second):
		t.Error("the long write is still running")
	}
	for _, c := range idle {
		if err := c.PingContext(ctx); err == nil {
			t.Error("an application connection survived the fence")
		}
		_ = c.Close()
	}
	if ro, err := a.db.ReadOnly(ctx); err != nil || !ro {
		t.Fatalf("ReadOnly = %t, %v; want true", ro, err)
	}

	// Our pool still works, on all its connections at once.
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.db.Version(ctx); err != nil {
				t.Errorf("own pool after fence: %v", err)
			}
		}()
	}
	wg.Wait()
	// Root (READ ONLY ADMIN) may still write: the watchdog heartbeat works on a fenced server.
	if err := a.db.ArmWatchdog(ctx, time.Hour); err != nil {
		t.Errorf("ArmWatchdog on a fenced server: %v", err)
	}
	if err := a.db.DisarmWatchdog(ctx); err != nil {
		t.Error(err)
	}

	// A reconnecting application cannot write.
	_, err = appConn(t, a).ExecContext(ctx, "INSERT INTO t VALUES (2, 0)")
	var me *mysqldrv.MySQLError
	if !errors.As(err, &me) || me.Number != 1290 {
		t.Fatalf("application write after fence: %v; want error 1290", err)
	}

	// The replica's binlog dump thread was spared: replication goes on.
	if st, err := b.db.ReplicaStatus(ctx); err != nil || st == nil || !st.IORunning || !st.SQLRunning {
		t.Errorf("replica after the primary's fence: %+v, %v", st, err)
	}
	if _, err := a.db.SQL().ExecContext(ctx, "INSERT INTO app_db.t VALUES (3, 0)"); err != nil { // root writes through read_only
		t.Fatal(err)
	}
	waitCaughtUp(t, ctx, b, a)
}

func TestWatchdog(t *testing.T) {
	ctx := testCtx(t)
	nodes := cluster(t, 2)
	a, b := nodes[0], nodes[1]
	before := executed(t, ctx, a)

	t.Run("install is idempotent and not replicated", func(t *testing.T) {
		for range 2 {
			if err := a.db.InstallWatchdog(ctx); err != nil {
				t.Fatal(err)
			}
		}
		st, err := a.db.WatchdogStatus(ctx)
		if err != nil || !st.Installed || !st.SchedulerOn || st.Armed {
			t.Fatalf("WatchdogStatus = %+v, %v", st, err)
		}
	})

	t.Run("running only with the event enabled and the scheduler on", func(t *testing.T) {
		running := func(want bool, after string) {
			t.Helper()
			if ok, err := a.db.WatchdogRunning(ctx); err != nil || ok != want {
				t.Fatalf("WatchdogRunning after %s = %v, %v; want %v", after, ok, err, want)
			}
		}
		running(true, "install")
		for _, c := range []struct{ stmt, what string }{
			{"SET GLOBAL event_scheduler = OFF", "the scheduler turned off"},
			{"ALTER EVENT mysqlpilot.fence_on_stale_heartbeat DISABLE", "the event disabled"},
			{"DROP EVENT mysqlpilot.fence_on_stale_heartbeat", "the event dropped"},
		} {
			// Not binlogged, as the watchdog itself never is (a later subtest counts GTIDs).
			conn, err := a.db.SQL().Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{"SET SESSION sql_log_bin = 0", c.stmt} {
				if _, err := conn.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			conn.Close()
			running(false, c.what)
			if err := a.db.InstallWatchdog(ctx); err != nil {
				t.Fatal(err)
			}
			running(true, "a reinstall")
		}
	})

	t.Run("without a heartbeat row the event does nothing", func(t *testing.T) {
		assertWritableFor(t, ctx, a, 2500*time.Millisecond)
	})

	t.Run("renewed heartbeat keeps writes open", func(t *testing.T) {
		deadline := time.Now().Add(4 * time.Second)
		for time.Now().Before(deadline) {
			if err := a.db.ArmWatchdog(ctx, 2*time.Second); err != nil {
				t.Fatal(err)
			}
			if ro, err := a.db.ReadOnly(ctx); err != nil || ro {
				t.Fatalf("read_only = %t, %v while the heartbeat is renewed", ro, err)
			}
			time.Sleep(500 * time.Millisecond) // the renewal interval under test
		}
		if err := a.db.DisarmWatchdog(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("stale heartbeat fences without any client", func(t *testing.T) {
		armed := time.Now()
		if err := a.db.OpenWrites(ctx, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		st, err := a.db.WatchdogStatus(ctx)
		if err != nil || !st.Armed || st.Remaining <= 0 || st.Remaining > 2*time.Second {
			t.Fatalf("WatchdogStatus = %+v, %v", st, err)
		}
		// Stop renewing and watch, with a connection that is no client of the watchdog.
		var fenced time.Duration
		eventually(t, 10*time.Second, "the watchdog sets read_only", func() (bool, error) {
			ro, err := a.db.ReadOnly(ctx)
			if ro {
				fenced = time.Since(armed)
			}
			return ro, err
		})
		t.Logf("watchdog: armed for 2s, read_only ON %s after arming (%s after the deadline)",
			fenced.Round(10*time.Millisecond), (fenced - 2*time.Second).Round(10*time.Millisecond))
		if fenced < 2*time.Second || fenced > 4*time.Second {
			t.Errorf("fenced %s after arming for 2s; want 2s..4s (event every second)", fenced)
		}
		_, err = appConn(t, a).ExecContext(ctx, "CREATE TABLE w (id INT PRIMARY KEY)")
		var me *mysqldrv.MySQLError
		if !errors.As(err, &me) || me.Number != 1290 {
			t.Errorf("application write after the watchdog fenced: %v; want 1290", err)
		}
		if err := a.db.DisarmWatchdog(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("the heartbeat adds no GTIDs and never reaches replicas", func(t *testing.T) {
		if after := executed(t, ctx, a); !after.Equal(before) {
			t.Errorf("primary's GTIDs moved from %s to %s", before, after)
		}
		var n int
		if err := b.db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM mysqlpilot.heartbeat").Scan(&n); err != nil || n != 0 {
			t.Errorf("replica heartbeat rows = %d, %v; want 0", n, err)
		}
		if st, err := b.db.ReplicaStatus(ctx); err != nil || st == nil || st.LastSQLError != "" {
			t.Errorf("replica: %+v, %v", st, err)
		}
	})
}

// assertWritableFor checks that read_only stays off for d.
func assertWritableFor(t *testing.T, ctx context.Context, n node, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		ro, err := n.db.ReadOnly(ctx)
		if err != nil || ro {
			t.Fatalf("read_only = %t, %v; want writes to stay open", ro, err)
		}
		time.Sleep(100 * time.Millisecond) // observing that nothing happens for a while
	}
}

func TestWrongReplicationPassword(t *testing.T) {
	ctx := testCtx(t)
	nodes := cluster(t, 2)
	a, b := nodes[0], nodes[1]
	const wrong = "not-the-repl-password"
	p := a.primary()
	p.Password = wrong
	if err := b.db.ChangePrimary(ctx, p, mysql.ChangePrimaryOptions{ConnectRetry: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := b.db.StartReplica(ctx); err != nil {
		t.Fatal(err)
	}
	var st *mysql.ReplicaStatus
	eventually(t, 20*time.Second, "the IO thread reports the login failure", func() (bool, error) {
		var err error
		st, err = b.db.ReplicaStatus(ctx)
		return err == nil && st != nil && st.LastIOError != "", err
	})
	t.Logf("IO state %q, error %d: %s", st.IOState, st.LastIOErrno, st.LastIOError)
	if st.IORunning || !strings.Contains(st.LastIOError, "Access denied for user 'repl'") || st.LastIOErrno != 1045 {
		t.Errorf("status %+v", st)
	}
	if strings.Contains(st.LastIOError, wrong) {
		t.Error("the password is in Last_IO_Error")
	}
}

func TestPasswordsStayOutOfErrors(t *testing.T) {
	ctx := testCtx(t)
	n := startNode(t, 1)
	if err := n.db.Bootstrap(ctx, users); err != nil {
		t.Fatal(err)
	}

	t.Run("wrong root password", func(t *testing.T) {
		_, err := mysql.Open(ctx, mysql.Conn{Flavor: mysql.MariaDB, Socket: n.srv.Socket(), Password: "wrong'pw",
			PasswordSource: "MYSQL_ROOT_PASSWORD"})
		if !errors.Is(err, mysql.ErrAccessDenied) {
			t.Fatalf("err = %v, want ErrAccessDenied", err)
		}
		if !strings.Contains(err.Error(), "wrong password for user root@localhost (check MYSQL_ROOT_PASSWORD)") {
			t.Errorf("unhelpful error: %v", err)
		}
		if strings.Contains(err.Error(), "wrong'pw") {
			t.Errorf("password in error: %v", err)
		}
	})

	t.Run("statements that fail while holding passwords", func(t *testing.T) {
		// The application account may not manage accounts or replication.
		low, err := mysql.Open(ctx, mysql.Conn{Flavor: mysql.MariaDB, Addr: n.srv.Addr(), User: users.User, Password: users.Password})
		if err != nil {
			t.Fatal(err)
		}
		defer low.Close()
		errs := []error{
			low.Bootstrap(ctx, users),
			low.ChangePrimary(ctx, mysql.Primary{Host: "127.0.0.1", Port: 1, User: "repl", Password: replPW}, mysql.ChangePrimaryOptions{}),
			n.db.ChangePrimary(ctx, mysql.Primary{Host: strings.Repeat("h", 300), Port: 1, User: "repl", Password: replPW}, mysql.ChangePrimaryOptions{}),
		}
		for i, err := range errs {
			if err == nil {
				t.Errorf("call %d succeeded", i)
				continue
			}
			t.Logf("call %d: %v", i, err)
			for _, pw := range []string{rootPW, appPW, replPW, `r00t`, `repl'`, `app'pw`} {
				if strings.Contains(err.Error(), pw) {
					t.Errorf("call %d: error holds a password: %v", i, err)
				}
			}
		}
	})

	t.Run("bootstrap again changes nothing", func(t *testing.T) {
		before := executed(t, ctx, n)
		if err := n.db.BootstrapLocal(ctx, users); err != nil {
			t.Fatal(err)
		}
		if after := executed(t, ctx, n); !after.Equal(before) {
			t.Errorf("BootstrapLocal wrote to the binlog: %s -> %s", before, after)
		}
		if err := n.db.Bootstrap(ctx, users); err != nil {
			t.Fatal(err)
		}
		var grants []string
		rows, err := n.db.SQL().QueryContext(ctx, "SHOW GRANTS FOR 'repl'@'%'")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var g string
			_ = rows.Scan(&g)
			grants = append(grants, g)
		}
		rows.Close()
		if len(grants) != 1 || !strings.HasPrefix(grants[0], "GRANT REPLICATION SLAVE ON *.* TO `repl`@`%`") {
			t.Errorf("replication grants: %q", grants)
		}
	})
}

func TestClientOptionFileLogsIn(t *testing.T) {
	ctx := testCtx(t)
	n := startNode(t, 1)
	path := filepath.Join(t.TempDir(), "client.cnf")
	if err := mysql.WriteClientOptionFile(path, mysql.ClientOptions{User: "root", Password: rootPW, Socket: n.srv.Socket()}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	client := harness.Tool(t, "mariadb", "apt-get install mariadb-client")
	err := supervisor.ExecRunner{}.Run(ctx, supervisor.Cmd{Path: client,
		Args: []string{"--defaults-extra-file=" + path, "-N", "-e", "SELECT CURRENT_USER()"}, Stdout: &out})
	if err != nil {
		t.Fatalf("mariadb with the option file: %v", err)
	}
	if got := strings.TrimSpace(out.String()); got != "root@localhost" {
		t.Errorf("CURRENT_USER() = %q", got)
	}
}

func TestInitDatadirRefusesPopulated(t *testing.T) {
	ctx := testCtx(t)
	n := startNode(t, 1)
	n.srv.Stop()
	err := mysql.InitDatadir(ctx, supervisor.ExecRunner{}, mysql.MariaDB, n.srv.Datadir(), mysql.InitOptions{})
	if !errors.Is(err, mysql.ErrDatadirInitialized) {
		t.Fatalf("err = %v, want ErrDatadirInitialized", err)
	}
	if _, err := os.Stat(filepath.Join(n.srv.Datadir(), "mysql-bin.index")); err != nil {
		t.Errorf("datadir changed: %v", err)
	}
}

func TestSetGTIDPosition(t *testing.T) {
	ctx := testCtx(t)
	n := startNode(t, 5)
	if err := n.db.SetGTIDPosition(ctx, "0-1-42,1-3-7"); err != nil {
		t.Fatal(err)
	}
	var pos string
	if err := n.db.SQL().QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_slave_pos").Scan(&pos); err != nil || pos != "0-1-42,1-3-7" {
		t.Errorf("gtid_slave_pos = %q, %v", pos, err)
	}
	if err := n.db.SQL().QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_state").Scan(&pos); err != nil || pos != "0-1-42,1-3-7" {
		t.Errorf("gtid_binlog_state = %q, %v", pos, err)
	}
	if err := n.db.SetGTIDPosition(ctx, "garbage"); err == nil {
		t.Error("garbage position accepted")
	}
}

// Two servers restored from the same snapshot: one becomes primary, the other asks it for
// exactly the snapshot's position, which the new primary never wrote into its own binlog.
// It must replicate, not fail with error 1236 (read as errant, it sent nodes re-seeding in
// a loop).
func TestRestoredPrimaryServesTheSnapshotPosition(t *testing.T) {
	ctx := testCtx(t)
	a, b := startNode(t, 7), startNode(t, 8)
	if err := a.db.Bootstrap(ctx, users); err != nil {
		t.Fatal(err)
	}
	const pos = "0-3-42"
	for _, n := range []node{a, b} {
		if err := n.db.SetGTIDPosition(ctx, pos); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.db.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	// a, primary now, replicated 0-3-43 from the snapshot's primary (server 3) before b asks
	// for 0-3-42.
	c, err := a.db.SQL().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Not in the app's database: the reset binlog lost its creation, and b never had it.
	for _, q := range []string{"SET SESSION server_id = 3", "SET SESSION gtid_seq_no = 43", "CREATE DATABASE restored"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	follow(t, ctx, b, a)
	waitCaughtUp(t, ctx, b, a)
	var state string
	if err := a.db.SQL().QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_state").Scan(&state); err != nil || state != "0-3-43" {
		t.Errorf("a's gtid_binlog_state = %q, %v; want 0-3-43 (the restored position, then its successor)", state, err)
	}
	rs, err := b.db.ReplicaStatus(ctx)
	if err != nil || rs == nil || rs.LastIOErrno != 0 {
		t.Fatalf("replica status %+v, %v", rs, err)
	}
}

func TestSemiSync(t *testing.T) {
	ctx := testCtx(t)
	nodes := cluster(t, 2)
	a, b := nodes[0], nodes[1]
	if err := a.db.EnableSemiSync(ctx, true, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.db.EnableSemiSync(ctx, false, 0); err != nil {
		t.Fatal(err)
	}
	status := func(name string) (int, error) {
		var v int
		err := a.db.SQL().QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = ?", name).Scan(&v)
		return v, err
	}
	eventually(t, 20*time.Second, "the replica connects as a semi-sync client", func() (bool, error) {
		n, err := status("Rpl_semi_sync_master_clients")
		return n == 1, err
	})
	if _, err := appConn(t, a).ExecContext(ctx, "CREATE TABLE s (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if n, err := status("Rpl_semi_sync_master_yes_tx"); err != nil || n < 1 {
		t.Errorf("semi-sync acknowledged transactions = %d, %v", n, err)
	}
	for _, d := range []*mysql.DB{a.db, b.db} {
		if err := d.DisableSemiSync(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
