//go:build integration

package harness

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMariaDB_Lifecycle(t *testing.T) {
	m := StartMariaDB(t, MariaDBOptions{ServerID: 7, RootPassword: "s3cret"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	db := m.RootDB(t)
	id, err := db.ServerID(ctx)
	if err != nil || id != 7 {
		t.Fatalf("ServerID = %d, %v; want 7", id, err)
	}
	if st, err := os.Stat(m.ConfigFile()); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("config file: %v, mode %v; want 0644", err, st.Mode().Perm())
	}
	if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE mysql.harness_probe (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}

	t.Run("stop and start keep the data", func(t *testing.T) {
		m.Stop()
		m.Start()
		db := m.RootDB(t)
		if _, err := db.SQL().ExecContext(ctx, "INSERT INTO mysql.harness_probe VALUES (1)"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("kill and start recover", func(t *testing.T) {
		m.Kill()
		m.Start()
		db := m.RootDB(t)
		var n int
		if err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.harness_probe").Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows after crash = %d, %v; want 1", n, err)
		}
	})

	t.Run("pause freezes and resume thaws", func(t *testing.T) {
		db := m.RootDB(t)
		m.Pause()
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := db.Version(pctx)
		pcancel()
		m.Resume()
		if err == nil {
			t.Fatal("a paused server answered")
		}
		if err := db.WaitReady(ctx); err != nil {
			t.Fatalf("after resume: %v", err)
		}
		if v, err := db.Version(ctx); err != nil || !strings.Contains(v, "MariaDB") {
			t.Fatalf("Version = %q, %v", v, err)
		}
	})
}
