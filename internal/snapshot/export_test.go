package snapshot

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mysqlpilot/mysqlpilot/internal/config"
	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
)

// For the external tests (node_integration_test.go), which need the Consul catalog of
// internal/cluster and so cannot be in this package.

// Busy is the lock BackupNow holds while this node takes a backup.
func (s *Snapshotter) Busy() *sync.Mutex { return &s.busy }

// DrillCheck stands in for the drill's throw-away server in unit tests.
type DrillCheck = func(ctx context.Context, rec Record, datadir string, log *slog.Logger) (checked, total int, err error)

// SetDrillCheck replaces the drill's server check (nil: the real one).
func (s *Snapshotter) SetDrillCheck(f DrillCheck) { s.drillCheck = f }

// FakeNode is a Snapshotter over an in-memory store and tools that play mariabackup and
// mbstream, with its config (datadir and scratch space in t.TempDir()).
type FakeNode struct {
	S     *Snapshotter
	Cfg   *config.Config
	store *memStore
	tools *fakeTools
	t     *testing.T
}

// NewFakeNode builds a FakeNode named node over cat.
func NewFakeNode(t *testing.T, node string, cat Catalog) *FakeNode {
	cfg := config.Default()
	cfg.Node = node
	dir := t.TempDir()
	cfg.MySQL.Datadir = filepath.Join(dir, "data")
	cfg.MySQL.Exec = []string{"mariadbd"}
	cfg.Snapshot.TempDir = filepath.Join(dir, "data-restore")
	store, tools := newMemStore(), &fakeTools{size: 256 << 10}
	s := &Snapshotter{cfg: cfg, flavor: mysql.MariaDB, store: store, backend: "mem", catalog: cat, runner: tools,
		log: slog.New(slog.DiscardHandler)}
	return &FakeNode{S: s, Cfg: cfg, store: store, tools: tools, t: t}
}

// Backup takes a fake snapshot into the node's store and returns its record (unpublished).
func (n *FakeNode) Backup() Record {
	n.t.Helper()
	o := testOptions(n.t, n.tools, n.store)
	rec, err := Backup(context.Background(), o)
	if err != nil {
		n.t.Fatal(err)
	}
	return rec
}

// Corrupt flips a byte in the middle of rec's stored object.
func (n *FakeNode) Corrupt(rec Record) { n.store.corrupt(n.t, rec.Path, int(rec.Size/2)) }

// Ran lists the tools run so far.
func (n *FakeNode) Ran() []string {
	n.tools.mu.Lock()
	defer n.tools.mu.Unlock()
	return append([]string(nil), n.tools.ran...)
}

// Cycle is one look of the drill loop; it returns the decision's sentence ("" after a drill).
func (v *Verifier) Cycle(ctx context.Context, isReplica func() bool) string {
	return v.cycle(ctx, isReplica)
}
