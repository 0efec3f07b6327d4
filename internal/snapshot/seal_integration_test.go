//go:build integration

package snapshot_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/seal"
	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// TestSealed_SnapshotAndBinlogsRestoreOnlyWithTheirKey: with snapshot.encrypt, everything the
// store receives but the manifests is sealed (a real mariabackup stream and real binlogs);
// a point-in-time restore without the key, or with another, is refused before the datadir is
// touched and names the key's source; with the key it rolls forward to the row asked for.
func TestSealed_SnapshotAndBinlogsRestoreOnlyWithTheirKey(t *testing.T) {
	ctx := testCtx(t)
	key, err := seal.ParseKey(seal.NewKeyText(), "snapshot.encrypt.keyFile /run/secrets/snapshot-key")
	if err != nil {
		t.Fatal(err)
	}
	store, dir := localStore(t)
	p := startPrimary(t)
	p.insert(1, 3)
	o := backupOpts(t, p, store)
	o.Key = key
	rec, err := snapshot.Backup(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Encrypt != seal.Algorithm || rec.KeyID != key.ID() {
		t.Fatalf("record: encrypt %q key id %q", rec.Encrypt, rec.KeyID)
	}
	p.insert(4, 6)
	var gtid6 string
	if err := p.db.SQL().QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&gtid6); err != nil {
		t.Fatal(err)
	}
	p.insert(7, 9)
	if _, err := snapshot.ArchiveBinlogs(ctx, p.db, store, snapshot.ArchiveOptions{Key: key, Log: testLogger(t)}); err != nil {
		t.Fatal(err)
	}

	// What the store holds: sealed objects, and manifests that name no secret.
	sealed := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(path, ".json"):
			if !bytes.Contains(b, []byte(`"key_id": "`+key.ID()+`"`)) && strings.Contains(path, "snapshots/") {
				t.Errorf("%s: key id outside its field", path)
			}
		case !bytes.HasPrefix(b, []byte("MPSEAL1\n")) || !strings.HasSuffix(path, ".sealed"):
			t.Errorf("%s is stored unsealed", path)
		default:
			sealed++
		}
		return nil
	})
	if err != nil || sealed < 2 {
		t.Fatalf("walk: %v; %d sealed objects, want the snapshot and at least one binlog", err, sealed)
	}

	r := startNode(t, 2)
	r.stop()
	marker := filepath.Join(r.srv.Datadir(), "marker")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := snapshot.PITROptions{
		Runner: supervisor.ExecRunner{}, Flavor: mysql.MariaDB, Store: store,
		Catalog: snapshot.StoreCatalog{Store: store}, Datadir: r.srv.Datadir(), TempDir: filepath.Join(t.TempDir(), "pitr"),
		RootPassword: rootPW, UntilGTID: gtid6, Log: testLogger(t),
	}
	other, _ := seal.ParseKey(seal.NewKeyText(), "snapshot.encrypt.key")
	for name, k := range map[string]*seal.Key{"no key": nil, "another key": other} {
		o := opts
		o.Key = k
		start := time.Now()
		_, err := snapshot.RestoreToTime(ctx, o)
		if err == nil || !strings.Contains(err.Error(), "encrypted with key id "+key.ID()) {
			t.Fatalf("%s: %v, want a refusal naming the snapshot's key id", name, err)
		}
		if k != nil && (!errors.Is(err, seal.ErrWrongKey) || !strings.Contains(err.Error(), "snapshot.encrypt.key")) {
			t.Errorf("%s: %v does not name the key's source", name, err)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Fatalf("%s: a refused restore touched the datadir: %v", name, err)
		}
		t.Logf("%s: refused in %v: %v", name, time.Since(start).Round(time.Millisecond), err)
	}

	opts.Key = key
	res, err := snapshot.RestoreToTime(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Binlogs) == 0 || !strings.HasSuffix(res.Binlogs[0], ".sealed") {
		t.Errorf("replayed binlogs %v, want sealed archive objects", res.Binlogs)
	}
	r.start()
	if got := r.ids(); !equalInts(got, seq(1, 6)) {
		t.Fatalf("rows after restoring to %s: %v, want 1..6", gtid6, got)
	}
}
