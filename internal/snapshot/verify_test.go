package snapshot_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// TestDecideDrill reads as the drill's schedule: on a healthy replica only, after a new
// snapshot without a drill, at most once per interval in the cluster, not while this node
// backs off after a failure of its own.
func TestDecideDrill(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	fresh := &snapshot.Record{ID: "20261205T115500.000Z-aaaaaa"}
	drilled := &snapshot.Record{ID: "20261205T105500.000Z-bbbbbb", VerifiedAt: now.Add(-50 * time.Minute)}
	failed := &snapshot.Record{ID: "20261205T105500.000Z-cccccc", VerifiedAt: now.Add(-50 * time.Minute), VerifyError: "sha256 mismatch"}
	cases := []struct {
		name  string
		state snapshot.DrillState
		drill bool
		why   string
	}{
		{"no drill on the primary", snapshot.DrillState{Now: now, Replica: false, Latest: fresh, Interval: time.Hour},
			false, "never on the primary"},
		{"no drill without a snapshot", snapshot.DrillState{Now: now, Replica: true, Interval: time.Hour},
			false, "no snapshot yet"},
		{"drill a new snapshot on a replica when none ran yet", snapshot.DrillState{Now: now, Replica: true, Latest: fresh, Interval: time.Hour},
			true, "has not been drilled"},
		{"drill a new snapshot once the interval since the last drill has passed",
			snapshot.DrillState{Now: now, Replica: true, Latest: fresh, LastDrill: now.Add(-61 * time.Minute), Interval: time.Hour},
			true, "has not been drilled"},
		{"wait for the interval since the cluster's last drill",
			snapshot.DrillState{Now: now, Replica: true, Latest: fresh, LastDrill: now.Add(-10 * time.Minute), Interval: time.Hour},
			false, "the next not before 2026-12-05T12:50:00Z"},
		{"no second drill of a verified snapshot", snapshot.DrillState{Now: now, Replica: true, Latest: drilled, Interval: time.Hour},
			false, "was drilled at"},
		{"no second drill of a failed snapshot (a fresh one is asked for)", snapshot.DrillState{Now: now, Replica: true, Latest: failed, Interval: time.Hour},
			false, "was drilled at"},
		{"back off after a failure of this node's own",
			snapshot.DrillState{Now: now, Replica: true, Latest: fresh, Interval: time.Hour, RetryAt: now.Add(time.Minute)},
			false, "next attempt at"},
		{"drill once the backoff has passed",
			snapshot.DrillState{Now: now, Replica: true, Latest: fresh, Interval: time.Hour, RetryAt: now.Add(-time.Second)},
			true, "has not been drilled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := snapshot.DecideDrill(c.state)
			if d.Drill != c.drill || !strings.Contains(d.Why, c.why) {
				t.Errorf("DecideDrill = %+v, want drill=%v and a reason containing %q", d, c.drill, c.why)
			}
		})
	}
}

// TestChooseRestore: bootstraps and re-seeds take the newest snapshot that did not fail its
// drill, verified or not yet drilled, and none when every one failed.
func TestChooseRestore(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	ok := func(id string) snapshot.Record { return snapshot.Record{ID: id, VerifiedAt: at} }
	unverified := func(id string) snapshot.Record { return snapshot.Record{ID: id} }
	bad := func(id string) snapshot.Record {
		return snapshot.Record{ID: id, VerifiedAt: at, VerifyError: "corrupt"}
	}
	cases := []struct {
		name    string
		recs    []snapshot.Record
		want    string // "" for none
		skipped []string
	}{
		{"no snapshot", nil, "", nil},
		{"the newest, not yet drilled", []snapshot.Record{ok("a"), unverified("b")}, "b", nil},
		{"the newest, verified", []snapshot.Record{unverified("a"), ok("b")}, "b", nil},
		{"a failed newest gives way to a verified older one", []snapshot.Record{ok("a"), bad("b")}, "a", []string{"b"}},
		{"a failed newest gives way to an undrilled older one", []snapshot.Record{ok("a"), unverified("b"), bad("c")}, "b", []string{"c"}},
		{"every one failed: none", []snapshot.Record{bad("a"), bad("b")}, "", []string{"b", "a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pick, skipped := snapshot.ChooseRestore(c.recs)
			got := ""
			if pick != nil {
				got = pick.ID
			}
			var ids []string
			for _, r := range skipped {
				ids = append(ids, r.ID)
			}
			if got != c.want || strings.Join(ids, ",") != strings.Join(c.skipped, ",") {
				t.Errorf("ChooseRestore = %q skipping %v, want %q skipping %v", got, ids, c.want, c.skipped)
			}
		})
	}
}

// okCheck stands in for the throw-away server: it checks that the restored datadir is there
// and reports n tables fine.
func okCheck(t *testing.T, n int) snapshot.DrillCheck {
	return func(_ context.Context, _ snapshot.Record, datadir string, _ *slog.Logger) (int, int, error) {
		if _, err := os.Stat(filepath.Join(datadir, "mysql")); err != nil {
			t.Errorf("the check ran without a restored datadir: %v", err)
		}
		return n, n, nil
	}
}

func publish(t *testing.T, cat *memCatalog, recs ...snapshot.Record) {
	t.Helper()
	for _, r := range recs {
		if err := cat.Publish(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

func record(t *testing.T, cat *memCatalog, id string) snapshot.Record {
	t.Helper()
	recs, _ := cat.List(context.Background())
	for _, r := range recs {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("snapshot %s not in the catalog", id)
	return snapshot.Record{}
}

// TestDrill_GoodSnapshotIsVerified: the drill restores into scratch space, checks, records
// verifiedAt without an error, counts it, and leaves no scratch copy behind.
func TestDrill_GoodSnapshotIsVerified(t *testing.T) {
	ctx := context.Background()
	cat := &memCatalog{}
	n := snapshot.NewFakeNode(t, "replica-2", cat)
	n.S.SetDrillCheck(okCheck(t, 3))
	rec := n.Backup()
	publish(t, cat, rec)
	res := n.S.Drill(ctx, rec)
	if res.Err != nil || res.Local || res.Tables != 3 {
		t.Fatalf("Drill = %+v", res)
	}
	got := record(t, cat, rec.ID)
	if !got.Verified() || got.VerifyError != "" {
		t.Errorf("record after a passing drill: verifiedAt %v, verifyError %q", got.VerifiedAt, got.VerifyError)
	}
	if req, _ := cat.SnapshotRequested(ctx); req != nil {
		t.Errorf("a passing drill asked for a snapshot: %+v", req)
	}
	if st := n.S.VerifyStats(); st.Runs != 1 || st.Failures != 0 || st.LastSuccess.IsZero() || !st.LastOK {
		t.Errorf("stats = %+v", st)
	}
	if ents, _ := os.ReadDir(n.Cfg.Snapshot.TempDir); len(ents) != 0 {
		t.Errorf("scratch space left behind: %v", ents)
	}
	if _, err := os.Stat(n.Cfg.MySQL.Datadir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the drill touched the node's datadir: %v", err)
	}
}

// TestDrill_CorruptSnapshotFailsAndBootstrapSkipsIt: a snapshot whose object was altered after
// publication fails its drill (recorded with the reason), the primary is asked for a fresh
// one, and a bootstrap restores the older, good snapshot instead.
func TestDrill_CorruptSnapshotFailsAndBootstrapSkipsIt(t *testing.T) {
	ctx := context.Background()
	cat := &memCatalog{}
	n := snapshot.NewFakeNode(t, "replica-2", cat)
	n.S.SetDrillCheck(okCheck(t, 1))
	good := n.Backup()
	time.Sleep(2 * time.Millisecond) // ids sort by the millisecond
	bad := n.Backup()
	publish(t, cat, good, bad)
	n.Corrupt(bad)

	res := n.S.Drill(ctx, bad)
	if !errors.Is(res.Err, snapshot.ErrCorrupt) || res.Local {
		t.Fatalf("Drill of a corrupt snapshot = %+v", res)
	}
	got := record(t, cat, bad.ID)
	if !got.FailedDrill() || got.VerifiedAt.IsZero() || !strings.Contains(got.VerifyError, "sha256 mismatch") {
		t.Errorf("record after a failed drill: verifiedAt %v, verifyError %q", got.VerifiedAt, got.VerifyError)
	}
	req, _ := cat.SnapshotRequested(ctx)
	if req == nil || req.After != bad.ID || !strings.Contains(req.Reason, "failed its restore drill") || req.FulfilledBy(&got) {
		t.Errorf("snapshot request after a failed drill = %+v", req)
	}
	if st := n.S.VerifyStats(); st.Runs != 1 || st.Failures != 1 || st.LastOK {
		t.Errorf("stats = %+v", st)
	}

	b, err := n.S.BootstrapReplica(ctx)
	if err != nil || b == nil || b.Record.ID != good.ID {
		t.Fatalf("BootstrapReplica = %+v, %v; want the good snapshot %s", b, err, good.ID)
	}
}

// TestDrill_EveryFailedSnapshotIsRefused: with only failed snapshots a re-seed restores
// nothing (ErrNoSnapshot: the node waits for the fresh one the drill asked for).
func TestDrill_EveryFailedSnapshotIsRefused(t *testing.T) {
	ctx := context.Background()
	cat := &memCatalog{}
	n := snapshot.NewFakeNode(t, "replica-2", cat)
	n.S.SetDrillCheck(func(context.Context, snapshot.Record, string, *slog.Logger) (int, int, error) {
		return 1, 1, errors.New("CHECK TABLE found 1 of 1 tables bad: app.t: Corrupt")
	})
	rec := n.Backup()
	publish(t, cat, rec)
	if res := n.S.Drill(ctx, rec); res.Err == nil || res.Local {
		t.Fatalf("Drill = %+v", res)
	}
	if got := record(t, cat, rec.ID); !strings.Contains(got.VerifyError, "app.t: Corrupt") {
		t.Errorf("verifyError %q", got.VerifyError)
	}
	if _, err := n.S.Reseed(ctx); !errors.Is(err, snapshot.ErrNoSnapshot) || !strings.Contains(err.Error(), "failed its restore drill") {
		t.Errorf("Reseed with only a failed snapshot = %v", err)
	}
}

// TestDrill_LocalFailureIsNotRecorded: a drill that fails on the node's side (the server
// binary missing, say) says nothing about the snapshot: no verifiedAt, no request.
func TestDrill_LocalFailureIsNotRecorded(t *testing.T) {
	ctx := context.Background()
	cat := &memCatalog{}
	n := snapshot.NewFakeNode(t, "replica-2", cat)
	n.S.SetDrillCheck(func(context.Context, snapshot.Record, string, *slog.Logger) (int, int, error) {
		return 0, 0, &supervisor.StartError{Name: "mariadbd", Op: "lookup", Err: os.ErrNotExist}
	})
	rec := n.Backup()
	publish(t, cat, rec)
	res := n.S.Drill(ctx, rec)
	if res.Err == nil || !res.Local {
		t.Fatalf("Drill = %+v, want a local failure", res)
	}
	if got := record(t, cat, rec.ID); !got.VerifiedAt.IsZero() || got.VerifyError != "" {
		t.Errorf("a local failure was recorded: %+v", got)
	}
	if req, _ := cat.SnapshotRequested(ctx); req != nil {
		t.Errorf("a local failure asked for a snapshot: %+v", req)
	}
	if st := n.S.VerifyStats(); st.LocalErrors != 1 || st.Runs != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestVerifier_Cycle: the loop drills only on a replica, only once per snapshot, never while
// another node holds the drill lock.
func TestVerifier_Cycle(t *testing.T) {
	ctx := context.Background()
	cat := &memCatalog{}
	n := snapshot.NewFakeNode(t, "replica-2", cat)
	drills := 0
	n.S.SetDrillCheck(func(context.Context, snapshot.Record, string, *slog.Logger) (int, int, error) {
		drills++
		return 1, 1, nil
	})
	v := n.S.NewVerifier()
	primary, replica := func() bool { return false }, func() bool { return true }
	if why := v.Cycle(ctx, replica); !strings.Contains(why, "no snapshot yet") {
		t.Errorf("cycle without a snapshot: %q", why)
	}
	rec := n.Backup()
	publish(t, cat, rec)
	if why := v.Cycle(ctx, primary); drills != 0 || !strings.Contains(why, "never on the primary") {
		t.Errorf("cycle on the primary: %q, %d drills", why, drills)
	}
	unlock, err := cat.VerifyLock(ctx) // another node drills
	if err != nil {
		t.Fatal(err)
	}
	if why := v.Cycle(ctx, replica); drills != 0 || !strings.Contains(why, "another node runs a drill") {
		t.Errorf("cycle while another node drills: %q, %d drills", why, drills)
	}
	unlock()
	if why := v.Cycle(ctx, replica); drills != 1 || why != "" {
		t.Errorf("cycle on a replica with a new snapshot: %q, %d drills", why, drills)
	}
	if why := v.Cycle(ctx, replica); drills != 1 || !strings.Contains(why, "was drilled at") {
		t.Errorf("second cycle: %q, %d drills", why, drills)
	}
	// A newer snapshot within the interval waits for it.
	time.Sleep(2 * time.Millisecond)
	publish(t, cat, n.Backup())
	if why := v.Cycle(ctx, replica); drills != 1 || !strings.Contains(why, "the next not before") {
		t.Errorf("cycle within the interval: %q, %d drills", why, drills)
	}
}
