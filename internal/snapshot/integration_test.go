//go:build integration

package snapshot_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/local"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/manta"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/mantatest"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/s3"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

const (
	rootPW = `r00t'"\#; pw`
	replPW = `repl'"pw\\`
)

var users = mysql.Users{RootPassword: rootPW, ReplUser: "repl", ReplPassword: replPW}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
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

// node is a running server with a root pool.
type node struct {
	t   *testing.T
	srv *harness.MariaDB
	db  *mysql.DB
}

func startNode(t *testing.T, id int) *node {
	t.Helper()
	srv := harness.StartMariaDB(t, harness.MariaDBOptions{ServerID: id, RootPassword: rootPW})
	n := &node{t: t, srv: srv}
	n.open()
	t.Cleanup(func() {
		if n.db != nil {
			n.db.Close()
		}
	})
	return n
}

func (n *node) open() {
	n.t.Helper()
	db, err := mysql.Open(testCtx(n.t), mysql.Conn{Flavor: mysql.MariaDB, Socket: n.srv.Socket(), Password: rootPW})
	if err != nil {
		n.t.Fatal(err)
	}
	n.db = db
}

func (n *node) stop() {
	n.db.Close()
	n.db = nil
	n.srv.Stop()
}

func (n *node) start() {
	n.srv.Start()
	n.open()
}

// startPrimary starts a writable primary with a replication account and table t.
func startPrimary(t *testing.T) *node {
	t.Helper()
	ctx := testCtx(t)
	p := startNode(t, 1)
	if err := p.db.Bootstrap(ctx, users); err != nil {
		t.Fatal(err)
	}
	if err := p.db.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	p.exec("CREATE DATABASE app")
	p.exec("CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(40), ts DATETIME(3))")
	return p
}

func (n *node) exec(q string, args ...any) {
	n.t.Helper()
	if _, err := n.db.SQL().ExecContext(testCtx(n.t), q, args...); err != nil {
		n.t.Fatalf("%s: %v", q, err)
	}
}

func (n *node) insert(from, to int) {
	n.t.Helper()
	for i := from; i <= to; i++ {
		n.exec("INSERT INTO app.t VALUES (?, ?, NOW(3))", i, fmt.Sprintf("row %d", i))
	}
}

func (n *node) ids() []int {
	n.t.Helper()
	rows, err := n.db.SQL().QueryContext(testCtx(n.t), "SELECT id FROM app.t ORDER BY id")
	if err != nil {
		n.t.Fatal(err)
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			n.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func equalInts(a, b []int) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func backupOpts(t *testing.T, p *node, store storage.Store) snapshot.BackupOptions {
	return snapshot.BackupOptions{
		Runner: supervisor.ExecRunner{}, Flavor: mysql.MariaDB, Socket: p.srv.Socket(), Password: rootPW,
		Store: store, Backend: "test", Node: "node1", Log: testLogger(t), Progress: time.Second,
	}
}

func backup(t *testing.T, p *node, store storage.Store) snapshot.Record {
	t.Helper()
	rec, err := snapshot.Backup(testCtx(t), backupOpts(t, p, store))
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	return rec
}

// restoreReplica stops r, restores rec into its datadir (the old one is moved aside), starts
// it, sets the GTID position and makes it replicate from p.
func restoreReplica(t *testing.T, r, p *node, store storage.Store, rec snapshot.Record) snapshot.RestoreResult {
	t.Helper()
	ctx := testCtx(t)
	r.stop()
	res, err := snapshot.Restore(ctx, snapshot.RestoreOptions{
		Runner: supervisor.ExecRunner{}, Flavor: mysql.MariaDB, Store: store, Record: rec,
		Datadir: r.srv.Datadir(), TempDir: filepath.Join(t.TempDir(), "restore"), Log: testLogger(t),
	})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if res.GTID != rec.GTID {
		t.Fatalf("Restore returned GTID %q, record has %q", res.GTID, rec.GTID)
	}
	r.start()
	if err := r.db.SetGTIDPosition(ctx, res.GTID); err != nil {
		t.Fatal(err)
	}
	err = r.db.ChangePrimary(ctx, mysql.Primary{Host: "127.0.0.1", Port: p.srv.Port(), User: users.ReplUser, Password: users.ReplPassword},
		mysql.ChangePrimaryOptions{ConnectRetry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.db.StartReplica(ctx); err != nil {
		t.Fatal(err)
	}
	return res
}

// waitRows waits until r has exactly the rows want.
func waitRows(t *testing.T, r *node, want []int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := r.ids()
		if equalInts(got, want) {
			return
		}
		if time.Now().After(deadline) {
			st, _ := r.db.ReplicaStatus(testCtx(t))
			t.Fatalf("replica has rows %v, want %v (replica status %+v)", got, want, st)
		}
		time.Sleep(50 * time.Millisecond) // polling replication progress with a deadline
	}
}

// ---------------------------------------------------------------------------------------------
// Stores

func localStore(t *testing.T) (*local.Store, string) {
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st, dir
}

func s3Store(t *testing.T) (*s3.Store, *harness.S3) {
	srv := harness.StartS3(t)
	st, err := s3.New(s3.Options{Endpoint: srv.Endpoint, Bucket: srv.Bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		PathStyle: true, PartSize: s3.MinPartSize, MaxRetries: 1, Prefix: "cluster"})
	if err != nil {
		t.Fatal(err)
	}
	return st, srv
}

func mantaStore(t *testing.T) (*manta.Store, *mantatest.Server) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	srv := mantatest.New(t, key.Public(), "acct")
	st, err := manta.New(manta.Options{URL: srv.URL(), User: "acct", KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), Dir: "snapshots"})
	if err != nil {
		t.Fatal(err)
	}
	return st, srv
}

// ---------------------------------------------------------------------------------------------
// Tests

// TestSnapshot_RestoreReplicaCatchesUp backs up a primary to each backend, restores a fresh
// replica from it, replicates the rows written after the snapshot, and does it again with a
// second snapshot (the seed's code only worked for the first).
func TestSnapshot_RestoreReplicaCatchesUp(t *testing.T) {
	backends := map[string]func(t *testing.T) storage.Store{
		"local": func(t *testing.T) storage.Store { s, _ := localStore(t); return s },
		"s3":    func(t *testing.T) storage.Store { s, _ := s3Store(t); return s },
		"manta": func(t *testing.T) storage.Store { s, _ := mantaStore(t); return s },
	}
	for _, name := range []string{"local", "s3", "manta"} {
		t.Run(name, func(t *testing.T) {
			store := backends[name](t)
			p := startPrimary(t)
			p.insert(1, 10)
			rec1 := backup(t, p, store)
			if rec1.GTID == "" || rec1.BinlogFile == "" || rec1.ServerID != 1 || rec1.BinlogCreated.IsZero() {
				t.Fatalf("record lacks its position: %+v", rec1)
			}
			p.insert(11, 20) // after the snapshot

			r := startNode(t, 2)
			res := restoreReplica(t, r, p, store, rec1)
			if res.MovedAside == "" {
				t.Error("the replica's initial datadir was not reported as moved aside")
			}
			waitRows(t, r, seq(1, 20))
			p.insert(21, 25)
			waitRows(t, r, seq(1, 25))

			// A second snapshot, restored on a third node.
			rec2 := backup(t, p, store)
			if rec2.ID <= rec1.ID {
				t.Fatalf("second snapshot id %s does not sort after %s", rec2.ID, rec1.ID)
			}
			p.insert(26, 30)
			r3 := startNode(t, 3)
			restoreReplica(t, r3, p, store, rec2)
			waitRows(t, r3, seq(1, 30))

			recs, err := snapshot.ListManifests(testCtx(t), store, "")
			if err != nil || len(recs) != 2 || recs[0].ID != rec1.ID || recs[1].ID != rec2.ID {
				t.Fatalf("manifests = %+v, %v; want the two snapshots", recs, err)
			}
		})
	}
}

// TestRestore_CorruptObjectRefused flips one byte of a stored snapshot: the restore refuses,
// says why, and leaves the datadir as it was.
func TestRestore_CorruptObjectRefused(t *testing.T) {
	for _, compress := range []string{snapshot.CompressZstd, snapshot.CompressNone} {
		t.Run(compress, func(t *testing.T) {
			store, dir := localStore(t)
			p := startPrimary(t)
			p.insert(1, 5)
			o := backupOpts(t, p, store)
			o.Compress = compress
			rec, err := snapshot.Backup(testCtx(t), o)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, rec.Path)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x01
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			datadir := filepath.Join(t.TempDir(), "data")
			if err := os.MkdirAll(datadir, 0o750); err != nil {
				t.Fatal(err)
			}
			marker := filepath.Join(datadir, "keep-me")
			if err := os.WriteFile(marker, []byte("old data"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = snapshot.Restore(testCtx(t), snapshot.RestoreOptions{Runner: supervisor.ExecRunner{}, Flavor: mysql.MariaDB,
				Store: store, Record: rec, Datadir: datadir, TempDir: filepath.Join(t.TempDir(), "tmp"), Log: testLogger(t)})
			if !errors.Is(err, snapshot.ErrCorrupt) {
				t.Fatalf("Restore of a corrupt object = %v, want ErrCorrupt", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "snapshot "+rec.ID+" is corrupt: sha256 mismatch") {
				t.Errorf("error does not say which snapshot is corrupt and why: %s", msg)
			}
			entries, _ := os.ReadDir(datadir)
			if len(entries) != 1 || entries[0].Name() != "keep-me" {
				t.Errorf("datadir changed: %v", entries)
			}
			matches, _ := filepath.Glob(datadir + ".old-*")
			if len(matches) > 0 {
				t.Errorf("datadir was moved aside for a refused restore: %v", matches)
			}
			t.Logf("refused as expected: %v", err)
		})
	}
}

// TestBackup_StorageUnreachable: a backup to a store that fails publishes nothing and says
// why; the next attempt, with the store back, succeeds.
func TestBackup_StorageUnreachable(t *testing.T) {
	t.Run("s3 stopped", func(t *testing.T) {
		store, srv := s3Store(t)
		p := startPrimary(t)
		p.insert(1, 5)
		srv.Stop()
		_, err := snapshot.Backup(testCtx(t), backupOpts(t, p, store))
		if err == nil {
			t.Fatal("Backup to a stopped S3 succeeded")
		}
		t.Logf("failed as expected: %v", err)
		if !strings.Contains(err.Error(), "upload") {
			t.Errorf("error does not say the upload failed: %v", err)
		}
		srv.Start()
		if objs, err := store.List(testCtx(t), ""); err != nil || len(objs) != 0 {
			t.Fatalf("after a failed backup the store holds %v (%v), want nothing", objs, err)
		}
		rec := backup(t, p, store)
		if _, err := store.Stat(testCtx(t), rec.Path); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("manta fails", func(t *testing.T) {
		store, srv := mantaStore(t)
		p := startPrimary(t)
		p.insert(1, 5)
		srv.FailNext(1, "PUT")
		if _, err := snapshot.Backup(testCtx(t), backupOpts(t, p, store)); err == nil {
			t.Fatal("Backup through a failing Manta succeeded")
		} else {
			t.Logf("failed as expected: %v", err)
		}
		if recs, _ := snapshot.ListManifests(testCtx(t), store, ""); len(recs) != 0 {
			t.Fatalf("manifests after a failed backup: %+v", recs)
		}
		backup(t, p, store)
	})
	t.Run("manta truncated upload", func(t *testing.T) {
		store, srv := mantaStore(t)
		p := startPrimary(t)
		p.insert(1, 5)
		srv.CutNextPut(64 << 10)
		if _, err := snapshot.Backup(testCtx(t), backupOpts(t, p, store)); err == nil {
			t.Fatal("Backup with a cut upload succeeded")
		} else {
			t.Logf("failed as expected: %v", err)
		}
		if recs, _ := snapshot.ListManifests(testCtx(t), store, ""); len(recs) != 0 {
			t.Fatalf("manifests after a failed backup: %+v", recs)
		}
		backup(t, p, store)
	})
	t.Run("backup tool fails", func(t *testing.T) {
		store, _ := localStore(t)
		p := startPrimary(t)
		o := backupOpts(t, p, store)
		o.ExtraArgs = []string{"--no-such-option"}
		_, err := snapshot.Backup(testCtx(t), o)
		if err == nil {
			t.Fatal("Backup with a failing tool succeeded")
		}
		if !strings.Contains(err.Error(), "mariabackup") {
			t.Errorf("error does not name the tool: %v", err)
		}
		if objs, _ := store.List(testCtx(t), ""); len(objs) != 0 {
			t.Fatalf("store holds %v after a failed backup", objs)
		}
		if strings.Contains(err.Error(), rootPW) {
			t.Fatal("the error holds the password")
		}
	})
}

// mountTmpfs mounts a tmpfs of size bytes at a new directory, or skips the test when mounting
// is not permitted.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): the disk-full test needs CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestBackupRestore_DiskFull: a backup to a full local volume fails and publishes nothing;
// a restore whose scratch space fills up fails and leaves the datadir untouched; both succeed
// once there is room.
func TestBackupRestore_DiskFull(t *testing.T) {
	p := startPrimary(t)
	p.insert(1, 5)

	vol := mountTmpfs(t, 16<<20)
	filler := filepath.Join(vol, "filler")
	// dd fills the volume and fails with ENOSPC, as intended.
	if out, err := exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k").CombinedOutput(); err == nil {
		t.Fatalf("dd filled a 16 MiB tmpfs without running out of space: %s", out)
	}
	store, err := local.New(filepath.Join(vol, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = snapshot.Backup(testCtx(t), backupOpts(t, p, store))
	if err == nil {
		t.Fatal("Backup to a full volume succeeded")
	}
	t.Logf("backup failed as expected: %v", err)
	if objs, _ := store.List(testCtx(t), ""); len(objs) != 0 {
		t.Fatalf("store holds %v after a failed backup", objs)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	rec := backup(t, p, store)

	scratch := mountTmpfs(t, 8<<20)
	datadir := filepath.Join(t.TempDir(), "data")
	_, err = snapshot.Restore(testCtx(t), snapshot.RestoreOptions{Runner: supervisor.ExecRunner{}, Flavor: mysql.MariaDB,
		Store: store, Record: rec, Datadir: datadir, TempDir: scratch, Log: testLogger(t)})
	if err == nil {
		t.Fatal("Restore with a full scratch volume succeeded")
	}
	if errors.Is(err, snapshot.ErrCorrupt) {
		t.Fatalf("a full disk was reported as corruption: %v", err)
	}
	t.Logf("restore failed as expected: %v", err)
	if _, err := os.Stat(datadir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("datadir was created by a failed restore: %v", err)
	}
	if entries, _ := os.ReadDir(scratch); len(entries) != 0 {
		t.Errorf("scratch space not cleaned up: %v", entries)
	}
	if _, err := snapshot.Restore(testCtx(t), snapshot.RestoreOptions{Runner: supervisor.ExecRunner{}, Flavor: mysql.MariaDB,
		Store: store, Record: rec, Datadir: datadir, TempDir: filepath.Join(t.TempDir(), "tmp"), Log: testLogger(t)}); err != nil {
		t.Fatalf("Restore with room: %v", err)
	}
}

// TestBinlog_ArchiveIdempotentAndPruned archives binlogs twice (nothing uploaded twice),
// then prunes with keep=1 after a second snapshot.
func TestBinlog_ArchiveIdempotentAndPruned(t *testing.T) {
	ctx := testCtx(t)
	store, _ := localStore(t)
	p := startPrimary(t)
	p.insert(1, 3)
	cat := &memCatalog{}
	rec1 := backup(t, p, store)
	if err := cat.Publish(ctx, rec1); err != nil {
		t.Fatal(err)
	}
	p.insert(4, 6)
	res1, err := snapshot.ArchiveBinlogs(ctx, p.db, store, snapshot.ArchiveOptions{Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res1.Uploaded) == 0 || res1.Progress == nil {
		t.Fatalf("first archive uploaded nothing: %+v", res1)
	}
	if res1.Progress.EndGTID == "" || res1.Progress.Closed.IsZero() {
		t.Errorf("progress lacks its GTID range or close time: %+v", res1.Progress)
	}
	res2, err := snapshot.ArchiveBinlogs(ctx, p.db, store, snapshot.ArchiveOptions{Log: testLogger(t), Last: res1.Progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Uploaded) != 1 {
		t.Fatalf("second archive uploaded %v, want only the file closed since", res2.Uploaded)
	}
	for _, u := range res2.Uploaded {
		for _, v := range res1.Uploaded {
			if u == v {
				t.Fatalf("%s uploaded twice", u)
			}
		}
	}
	if res2.Gap != "" {
		t.Errorf("gap reported without a purge: %s", res2.Gap)
	}

	// Close two more binlogs and purge the first of them unarchived: the gap is reported.
	p.exec("FLUSH BINARY LOGS")
	p.exec("FLUSH BINARY LOGS")
	base, n, _ := strings.Cut(res2.Active, ".")
	var num int
	fmt.Sscanf(n, "%d", &num)
	keepFrom := fmt.Sprintf("%s.%06d", base, num+1)
	// The server refuses to purge a binlog until InnoDB's binlog checkpoint has passed it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.exec("PURGE BINARY LOGS TO '" + keepFrom + "'")
		var first string
		var size any
		if err := p.db.SQL().QueryRowContext(ctx, "SHOW BINARY LOGS").Scan(&first, &size); err != nil {
			t.Fatal(err)
		}
		if first == keepFrom {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("could not purge the binlogs before %s (oldest is %s)", keepFrom, first)
		}
		time.Sleep(50 * time.Millisecond) // polling the server's binlog checkpoint
	}
	res3, err := snapshot.ArchiveBinlogs(ctx, p.db, store, snapshot.ArchiveOptions{Log: testLogger(t), Last: res2.Progress})
	if err != nil {
		t.Fatal(err)
	}
	if res3.Gap == "" {
		t.Errorf("purged binlogs not reported as a gap: %+v", res3)
	}

	rec2 := backup(t, p, store)
	if err := cat.Publish(ctx, rec2); err != nil {
		t.Fatal(err)
	}
	// Archive the binlog the second snapshot stands in: prune keeps it and drops the older.
	if _, err := snapshot.ArchiveBinlogs(ctx, p.db, store, snapshot.ArchiveOptions{Log: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	before, _ := store.List(ctx, "binlogs/")
	pr, err := snapshot.Prune(ctx, store, cat, 1, snapshot.PruneOptions{Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Snapshots) != 1 || pr.Snapshots[0] != rec1.ID {
		t.Fatalf("pruned %v, want %s", pr.Snapshots, rec1.ID)
	}
	if _, err := store.Stat(ctx, rec1.Path); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("pruned snapshot object still there: %v", err)
	}
	if _, err := store.Stat(ctx, rec2.Path); err != nil {
		t.Errorf("kept snapshot object gone: %v", err)
	}
	after, _ := store.List(ctx, "binlogs/")
	if len(after) != 1 || !strings.HasSuffix(after[0].Name, rec2.BinlogFile+".zst") {
		t.Errorf("binlogs before prune %v, after %v: want only the snapshot's %s", before, after, rec2.BinlogFile)
	}
	if recs, _ := cat.List(ctx); len(recs) != 1 || recs[0].ID != rec2.ID {
		t.Errorf("catalog after prune: %+v", recs)
	}
}

// TestPITR_RestoreToTimeBetweenRows writes rows with timestamps, restores to a time between
// two of them, and checks that exactly the rows before it exist.
func TestPITR_RestoreToTimeBetweenRows(t *testing.T) {
	ctx := testCtx(t)
	store, _ := localStore(t)
	p := startPrimary(t)
	p.insert(1, 3)
	backup(t, p, store)
	p.insert(4, 6) // after the snapshot, before the target

	// The target is the next whole second; rows 7.. are written at or after it.
	target := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(target) + 50*time.Millisecond) // binlog timestamps have one-second resolution
	p.insert(7, 7)
	var gtid7 string
	if err := p.db.SQL().QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&gtid7); err != nil {
		t.Fatal(err)
	}
	p.insert(8, 9)
	if _, err := snapshot.ArchiveBinlogs(ctx, p.db, store, snapshot.ArchiveOptions{Log: testLogger(t)}); err != nil {
		t.Fatal(err)
	}

	r := startNode(t, 2)
	r.stop()
	marker := filepath.Join(r.srv.Datadir(), "marker")
	opts := snapshot.PITROptions{
		Runner: supervisor.ExecRunner{}, Flavor: mysql.MariaDB, Store: store,
		Catalog: snapshot.StoreCatalog{Store: store}, Datadir: r.srv.Datadir(), TempDir: filepath.Join(t.TempDir(), "pitr"),
		RootPassword: rootPW, Log: testLogger(t),
	}

	// A target after the archive's end is refused before the datadir is touched.
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	late := opts
	late.Until = time.Now().Add(time.Hour)
	if _, err := snapshot.RestoreToTime(ctx, late); err == nil || !strings.Contains(err.Error(), "hold transactions up to") {
		t.Fatalf("restore beyond the archive = %v, want a refusal", err)
	} else {
		t.Logf("refused as expected: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("a refused restore touched the datadir: %v", err)
	}

	opts.Until = target
	res, err := snapshot.RestoreToTime(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restored %s + %v to GTID %s", res.Snapshot.ID, res.Binlogs, res.GTID)
	r.start()
	if got := r.ids(); !equalInts(got, seq(1, 6)) {
		t.Fatalf("rows after restoring to %s: %v, want 1..6", target, got)
	}
	var pos, binlogPos string
	if err := r.db.SQL().QueryRowContext(ctx, "SELECT @@gtid_slave_pos, @@gtid_binlog_pos").Scan(&pos, &binlogPos); err != nil {
		t.Fatal(err)
	}
	if pos != res.GTID || binlogPos != res.GTID {
		t.Errorf("restored server: gtid_slave_pos %q, gtid_binlog_pos %q; want both %q", pos, binlogPos, res.GTID)
	}

	// The same with a GTID target: up to and including row 7's transaction.
	r3 := startNode(t, 3)
	r3.stop()
	byGTID := opts
	byGTID.Until, byGTID.UntilGTID = time.Time{}, gtid7
	byGTID.Datadir = r3.srv.Datadir()
	res, err = snapshot.RestoreToTime(ctx, byGTID)
	if err != nil {
		t.Fatal(err)
	}
	if res.GTID != gtid7 {
		t.Errorf("restored to GTID %s, want %s", res.GTID, gtid7)
	}
	r3.start()
	if got := r3.ids(); !equalInts(got, seq(1, 7)) {
		t.Fatalf("rows after restoring to GTID %s: %v, want 1..7", gtid7, got)
	}
	// A GTID the archive does not reach is refused.
	beyond := opts
	beyond.Until, beyond.UntilGTID = time.Time{}, "0-1-999999"
	beyond.Datadir = filepath.Join(t.TempDir(), "never")
	if _, err := snapshot.RestoreToTime(ctx, beyond); err == nil {
		t.Fatal("restore to a GTID beyond the archive succeeded")
	} else {
		t.Logf("refused as expected: %v", err)
	}
	if _, err := os.Stat(beyond.Datadir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused restore created the datadir: %v", err)
	}
}

// TestBackup_ThroughSupervisor backs up and restores with the production Runner, a
// supervisor.Supervisor (the only reaper of its process's children), in a child process of
// the test: the harness's own os/exec children must not meet that reaper.
func TestBackup_ThroughSupervisor(t *testing.T) {
	p := startPrimary(t)
	p.insert(1, 5)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBackupSupervisedHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "SNAPSHOT_HELPER_SOCKET="+p.srv.Socket(), "SNAPSHOT_HELPER_DIR="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("helper output:\n%s", out)
	if err != nil || !strings.Contains(string(out), "HELPER OK") {
		t.Fatalf("helper: %v", err)
	}
}

func TestBackupSupervisedHelper(t *testing.T) {
	sock := os.Getenv("SNAPSHOT_HELPER_SOCKET")
	if sock == "" {
		t.Skip("runs as TestBackup_ThroughSupervisor's child")
	}
	dir := os.Getenv("SNAPSHOT_HELPER_DIR")
	ctx := testCtx(t)
	log := testLogger(t)
	sup := supervisor.New(log)
	defer sup.Close()
	store, err := local.New(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := snapshot.Backup(ctx, snapshot.BackupOptions{Runner: sup, Flavor: mysql.MariaDB, Socket: sock, Password: rootPW,
		Store: store, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	res, err := snapshot.Restore(ctx, snapshot.RestoreOptions{Runner: sup, Flavor: mysql.MariaDB, Store: store, Record: rec,
		Datadir: filepath.Join(dir, "data"), TempDir: filepath.Join(dir, "tmp"), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if res.GTID != rec.GTID {
		t.Fatalf("restored GTID %s, recorded %s", res.GTID, rec.GTID)
	}
	// A failing tool is reported with its exit status through the supervisor too.
	_, err = snapshot.Backup(ctx, snapshot.BackupOptions{Runner: sup, Flavor: mysql.MariaDB, Socket: sock, Password: rootPW,
		Store: store, Log: log, ExtraArgs: []string{"--no-such-option"}})
	if err == nil || !strings.Contains(err.Error(), "exit status") {
		t.Fatalf("failing tool through the supervisor: %v", err)
	}
	fmt.Println("HELPER OK", rec.ID, res.GTID)
}
