package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/seal"
	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/local"
	"github.com/mysqlpilot/mysqlpilot/test/bench/lab"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// Expert is issue 13's reference for the replica bootstrap: "the same steps done by hand by
// an expert on the same snapshot (`mbstream -x` from the uncompressed stream, `--prepare`,
// start, `CHANGE MASTER ... MASTER_USE_GTID=slave_pos`)".
//
// How this bench reads it: the expert starts from the snapshot's backup stream already
// uncompressed and on local disk (the very snapshot the new node restores, decoded by
// snapshot.Decode into a file and fsynced before the clock starts), so the download, the
// sha256 check, opening the seal and decompression are not counted for the expert, while
// mysqlpilot does all of them. Counted, with the clock started just before `mbstream -x`:
//
//  1. `mbstream -x -C data < stream.xbstream`;
//  2. `mariabackup --prepare` with the --use-memory mysqlpilot's bootstrap uses
//     (snapshot.PrepareMemory of the machine's memory limit, server stopped), same arguments;
//  3. mariadbd on the prepared datadir, in place (no move, no fsync), with the server options
//     mysqlpilot writes for a node (internal/mysql's ServerConfig: binlog, GTID, relay log,
//     128M buffer pool) minus TLS keys and semi-sync; a private port and socket; waiting for
//     a login as root every 20 ms;
//  4. SET GLOBAL gtid_slave_pos from the backup's binlog info file, CHANGE MASTER TO the
//     primary with MASTER_USE_GTID=slave_pos (as the cluster's replication user, over TLS,
//     since that user requires it), START SLAVE;
//  5. caught up: MASTER_GTID_WAIT for the primary's @@gtid_binlog_pos read after START
//     SLAVE, and Slave_IO_Running = Slave_SQL_Running = Yes.
//
// It is a script, not a person: no typing, no thinking, polls every 20 ms. The expert's
// config file is written before the clock starts (an expert has it ready). The expert does
// not register in Consul or wait for a health check: "healthy" for it is step 5.
type Expert struct {
	Decode      time.Duration // snapshot object -> uncompressed stream file, fsynced (NOT counted)
	StreamBytes int64
	UseMemory   int64
	Extract     time.Duration // 1
	Prepare     time.Duration // 2
	Start       time.Duration // 3
	Replicate   time.Duration // 4 and 5
	Total       time.Duration // 1 to 5
	GTID        string        // the backup's position
	TLS         string        // how replication connects
	Err         error
}

// expertServerID is the expert replica's server_id: mysqlpilot hands out small ones.
const expertServerID = 4242424

// expertBootstrap does Expert's steps on snapshot rec (from the store in storeDir) beside the
// cluster in base, replicating from p, and cleans up after itself.
func expertBootstrap(t *lab.TB, p *harness.PilotNode, rec snapshot.Record, storeDir, base string) (e Expert) {
	fail := func(err error) Expert { e.Err = fmt.Errorf("expert by hand: %w", err); return e }
	dir, err := os.MkdirTemp(base, "expert-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// Not counted: the uncompressed stream of the same snapshot, on disk.
	store, err := local.New(storeDir)
	if err != nil {
		return fail(err)
	}
	key, err := seal.ParseKey(harness.SnapshotKey, "the harness's snapshot key")
	if err != nil {
		return fail(err)
	}
	streamPath := filepath.Join(dir, "stream.xbstream")
	start := time.Now()
	if e.StreamBytes, err = decodeToFile(ctx, store, rec, key, streamPath); err != nil {
		return fail(err)
	}
	e.Decode = time.Since(start)

	limit, _, err := snapshot.MemoryLimit()
	if err != nil {
		return fail(err)
	}
	e.UseMemory = snapshot.PrepareMemory(limit, true)
	datadir := filepath.Join(dir, "data")
	sockDir, err := os.MkdirTemp("", "expert-sock-") // a socket path must stay short
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(sockDir)
	cnf := filepath.Join(dir, "my.cnf")
	sc := mysql.ServerConfig{Flavor: mysql.MariaDB, Datadir: datadir, Socket: filepath.Join(sockDir, "mysqld.sock"),
		PidFile: filepath.Join(dir, "mysqld.pid"), Port: harness.FreePort(t), BindAddress: "127.0.0.1",
		ServerID: expertServerID, ReportHost: "127.0.0.1", TmpDir: filepath.Join(dir, "tmp")}
	if err := os.MkdirAll(sc.TmpDir, 0o750); err != nil {
		return fail(err)
	}
	if err := mysql.WriteServerConfig(cnf, sc); err != nil {
		return fail(err)
	}
	if err := os.Mkdir(datadir, 0o750); err != nil {
		return fail(err)
	}
	srvLog := filepath.Join(dir, "mariadbd.log")

	// The clock starts.
	t0 := time.Now()
	step := t0
	lap := func() time.Duration { now := time.Now(); d := now.Sub(step); step = now; return d }
	if err := runTool("mbstream", []string{"-x", "-C", datadir}, streamPath); err != nil {
		return fail(err)
	}
	e.Extract = lap()
	if err := runTool("mariabackup", mysql.MariaDB.PrepareArgs(datadir, e.UseMemory), ""); err != nil {
		return fail(err)
	}
	e.Prepare = lap()
	if e.GTID, err = backupGTID(datadir); err != nil {
		return fail(err)
	}
	srv, err := startServer(cnf, srvLog)
	if err != nil {
		return fail(err)
	}
	defer stopServer(srv)
	db, err := waitLogin(sc.Socket, srv, 10*time.Minute)
	if err != nil {
		return fail(fmt.Errorf("%w\n%s", err, tailFile(srvLog, 2000)))
	}
	defer db.Close()
	e.Start = lap()
	if err := replicate(ctx, db, p, e.GTID, &e.TLS); err != nil {
		return fail(err)
	}
	e.Replicate = lap()
	e.Total = time.Since(t0)
	_, _ = db.ExecContext(ctx, "STOP SLAVE")
	return e
}

// decodeToFile writes the snapshot's uncompressed stream to path and fsyncs it, so that its
// write-back does not run into the timed steps.
func decodeToFile(ctx context.Context, store *local.Store, rec snapshot.Record, key *seal.Key, path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := snapshot.Decode(ctx, store, rec, key, false, f)
	if err != nil {
		return n, err
	}
	if err := f.Sync(); err != nil {
		return n, err
	}
	return n, f.Close()
}

// runTool runs a tool to its end, its stdin from the file stdin when set.
func runTool(name string, args []string, stdin string) error {
	cmd := exec.Command(name, args...)
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		s := out.String()
		if len(s) > 2000 {
			s = s[len(s)-2000:]
		}
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, s)
	}
	return nil
}

// backupGTID reads the GTID position from the prepared backup's binlog info file.
func backupGTID(datadir string) (string, error) {
	for _, name := range mysql.MariaDB.BinlogInfoFiles() {
		b, err := os.ReadFile(filepath.Join(datadir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		f := strings.Fields(string(b))
		if len(f) < 3 {
			return "", fmt.Errorf("%s: %q holds no GTID", name, b)
		}
		return f[2], nil
	}
	return "", fmt.Errorf("no binlog info file in %s", datadir)
}

func startServer(cnf, logPath string) (*exec.Cmd, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	args := []string{"--defaults-file=" + cnf}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.Command("mariadbd", args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, cmd.Start()
}

// stopServer stops the expert's server: SIGTERM, SIGKILL after 60 s.
func stopServer(cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// waitLogin connects as root (the snapshot's root password: the datadir is a copy of the
// primary's) once the server accepts logins, polling every 20 ms.
func waitLogin(socket string, srv *exec.Cmd, d time.Duration) (*sql.DB, error) {
	db, err := sql.Open("mysql", fmt.Sprintf("root:%s@unix(%s)/?timeout=1s&readTimeout=15m&writeTimeout=1m", harness.RootPassword, socket))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	deadline := time.Now().Add(d)
	for {
		err := db.Ping()
		if err == nil {
			return db, nil
		}
		if srv.ProcessState != nil || syscall.Kill(srv.Process.Pid, 0) != nil {
			db.Close()
			return nil, fmt.Errorf("mariadbd exited during start-up: %v", err)
		}
		if time.Now().After(deadline) {
			db.Close()
			return nil, fmt.Errorf("mariadbd not accepting logins within %s: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// replicate points the expert's server at p from the backup's position gtid and waits,
// polling every 20 ms, until both replication threads run and it has applied p's
// @@gtid_binlog_pos as read right after START SLAVE.
func replicate(ctx context.Context, db *sql.DB, p *harness.PilotNode, gtid string, how *string) error {
	if !gtidText.MatchString(gtid) {
		return fmt.Errorf("GTID position %q", gtid)
	}
	tls := "MASTER_SSL = 1, MASTER_SSL_VERIFY_SERVER_CERT = 0"
	*how = "TLS, certificate not verified"
	if ca := filepath.Join(p.Dir, "data.tls", "ca.pem"); fileExists(ca) {
		// As mysqlpilot's replicas do: the cluster CA, the primary's certificate verified.
		tls = fmt.Sprintf("MASTER_SSL = 1, MASTER_SSL_CA = '%s', MASTER_SSL_VERIFY_SERVER_CERT = 1", ca)
		*how = "TLS, certificate verified with the cluster CA"
	}
	for _, q := range []string{
		fmt.Sprintf("SET GLOBAL gtid_slave_pos = '%s'", gtid),
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %d, MASTER_USER = 'repl', MASTER_PASSWORD = '%s', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, %s",
			p.Port, harness.ReplPassword, tls),
		"START SLAVE",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", strings.SplitN(q, " = '", 2)[0], err)
		}
	}
	pdb, err := primarySQL(p)
	if err != nil {
		return err
	}
	defer pdb.Close()
	var target string
	if err := pdb.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&target); err != nil {
		return fmt.Errorf("the primary's position: %w", err)
	}
	if !gtidText.MatchString(target) {
		return fmt.Errorf("the primary's position %q", target)
	}
	deadline := time.Now().Add(15 * time.Minute)
	for {
		st, err := slaveStatus(ctx, db)
		if err != nil {
			return err
		}
		if st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" {
			var r sql.NullInt64
			if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 0)", target)).Scan(&r); err != nil {
				return err
			}
			if r.Valid && r.Int64 == 0 {
				return nil
			}
		}
		if st["Last_SQL_Errno"] != "0" || (st["Last_IO_Errno"] != "0" && st["Slave_IO_Running"] == "No") {
			return fmt.Errorf("replication failed: IO %s (%s: %s), SQL %s (%s: %s)", st["Slave_IO_Running"], st["Last_IO_Errno"], st["Last_IO_Error"],
				st["Slave_SQL_Running"], st["Last_SQL_Errno"], st["Last_SQL_Error"])
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not caught up with %s within 15m: IO %s, SQL %s, at %s", target, st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Gtid_IO_Pos"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var gtidText = regexp.MustCompile(`^[0-9,-]*$`)

// slaveStatus is SHOW SLAVE STATUS's row by column name.
func slaveStatus(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, errors.Join(rows.Err(), errors.New("SHOW SLAVE STATUS: no row"))
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	st := map[string]string{}
	for i, c := range cols {
		st[c] = string(vals[i])
	}
	return st, rows.Err()
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// primarySQL opens p's server as root over its socket.
func primarySQL(p *harness.PilotNode) (*sql.DB, error) {
	return sql.Open("mysql", fmt.Sprintf("root:%s@unix(%s)/?timeout=5s&readTimeout=1m", harness.RootPassword, filepath.Join(p.Dir, "mysqld.sock")))
}

// storageDir is the local snapshot store's directory from p's config.
func storageDir(p *harness.PilotNode) (string, error) {
	b, err := os.ReadFile(p.Config)
	if err != nil {
		return "", err
	}
	var cfg struct {
		Storage struct {
			Local struct {
				Dir string `json:"dir"`
			} `json:"local"`
		} `json:"storage"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", err
	}
	if cfg.Storage.Local.Dir == "" {
		return "", fmt.Errorf("%s has no storage.local.dir", p.Config)
	}
	return cfg.Storage.Local.Dir, nil
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
