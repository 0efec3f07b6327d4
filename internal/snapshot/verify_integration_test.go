//go:build integration

package snapshot_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// TestDrill_RealServer: with real Consul, mariabackup and mariadbd, a replica's drill of a
// good snapshot restores it into scratch space, runs CHECK TABLE on a throw-away server and
// records verifiedAt on snapshots/<id> and latest; a snapshot whose stored object is
// corrupted after publication fails its drill (verifyError recorded, a fresh snapshot asked
// for), and the next bootstrap skips it and restores the good older one.
func TestDrill_RealServer(t *testing.T) {
	ctx := snapCtx(t)
	f := newSnapFixture(t)
	good, err := f.s.BackupNow(ctx, f.p.db, "")
	if err != nil {
		t.Fatal(err)
	}

	// node2 is a replica with its own datadir and scratch space.
	dir := t.TempDir()
	cfg2 := *f.cfg
	cfg2.Node = "node2"
	cfg2.MySQL.Datadir = filepath.Join(dir, "data")
	cfg2.Snapshot.TempDir = filepath.Join(dir, "data-restore")
	s2, err := newSnapshotter(&cfg2, f.consul, supervisor.ExecRunner{}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := s2.Drill(ctx, good)
	tookGood, tables := time.Since(start), res.TablesTotal
	if res.Err != nil || res.Local {
		t.Fatalf("drill of a good snapshot = %+v", res)
	}
	if res.Tables < 2 || res.Tables != res.TablesTotal { // app.t and the mysql schema's InnoDB tables
		t.Errorf("CHECK TABLE ran on %d of %d tables", res.Tables, res.TablesTotal)
	}
	for _, k := range []string{"snapshots/" + good.ID, "snapshots/latest"} {
		var got snapshot.Record
		if err := json.Unmarshal(f.key(t, k).Value, &got); err != nil {
			t.Fatal(err)
		}
		if !got.Verified() || got.VerifyError != "" || got.SHA256 != good.SHA256 {
			t.Errorf("%s after a passing drill = %+v", k, got)
		}
	}
	if ents, err := os.ReadDir(cfg2.Snapshot.TempDir); err != nil || len(ents) != 0 {
		t.Errorf("scratch space left behind: %v, %v", ents, err)
	}
	if _, err := os.Stat(cfg2.MySQL.Datadir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the drill touched node2's datadir: %v", err)
	}

	// A newer snapshot, corrupted in the store after it was published.
	f.p.exec(t, "INSERT INTO app.t (v) VALUES ('d')")
	bad, err := f.s.BackupNow(ctx, f.p.db, "")
	if err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(f.cfg.Storage.Local.Dir, bad.Path)
	b, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+16; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(obj, b, 0o600); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	res = s2.Drill(ctx, bad)
	tookBad := time.Since(start)
	if !errors.Is(res.Err, snapshot.ErrCorrupt) || res.Local {
		t.Fatalf("drill of a corrupted snapshot = %+v", res)
	}
	for _, k := range []string{"snapshots/" + bad.ID, "snapshots/latest"} {
		var got snapshot.Record
		if err := json.Unmarshal(f.key(t, k).Value, &got); err != nil {
			t.Fatal(err)
		}
		if !got.FailedDrill() || got.VerifiedAt.IsZero() || !strings.Contains(got.VerifyError, "sha256 mismatch") {
			t.Errorf("%s after a failed drill = %+v", k, got)
		}
		if strings.Contains(string(f.key(t, k).Value), snapRootPW) {
			t.Errorf("%s holds the root password", k)
		}
	}
	var req snapshot.SnapshotRequest
	if kv := f.key(t, "snapshot-request"); kv == nil || json.Unmarshal(kv.Value, &req) != nil || req.After != bad.ID {
		t.Errorf("snapshot request after a failed drill = %+v", req)
	}

	// The next bootstrap restores the good, older snapshot.
	boot, err := s2.BootstrapReplica(ctx)
	if err != nil || boot == nil || boot.Record.ID != good.ID {
		t.Fatalf("BootstrapReplica = %+v, %v; want snapshot %s, not the failed %s", boot, err, good.ID, bad.ID)
	}
	if _, err := os.Stat(filepath.Join(cfg2.MySQL.Datadir, "app")); err != nil {
		t.Errorf("bootstrapped datadir: %v", err)
	}
	t.Logf("drill of a good snapshot (%d bytes stored, %d raw, %d tables): %.2fs; of a corrupted one: %.2fs",
		good.Size, good.RawSize, tables, tookGood.Seconds(), tookBad.Seconds())
}
