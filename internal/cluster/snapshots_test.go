package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/consul"
	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
)

// fakeKV is an in-memory Consul KV with sessions and locks, enough for Catalog.
type fakeKV struct {
	mu       sync.Mutex
	kvs      map[string]consul.KV
	index    uint64
	sessions map[string]consul.SessionOptions
	renewals int
	nextID   int
	failCAS  int // the next failCAS CAS calls lose the race
}

func newFakeKV() *fakeKV {
	return &fakeKV{kvs: map[string]consul.KV{}, sessions: map[string]consul.SessionOptions{}}
}

func (f *fakeKV) Get(_ context.Context, key string) (*consul.KV, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kv, ok := f.kvs[key]
	if !ok {
		return nil, f.index, nil
	}
	return &kv, f.index, nil
}

func (f *fakeKV) List(_ context.Context, prefix string) ([]consul.KV, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []consul.KV
	for k, kv := range f.kvs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, kv)
		}
	}
	slices.SortFunc(out, func(a, b consul.KV) int { return strings.Compare(a.Key, b.Key) })
	return out, f.index, nil
}

func (f *fakeKV) setLocked(key string, value []byte, session string) {
	f.index++
	f.kvs[key] = consul.KV{Key: key, Value: slices.Clone(value), Session: session, ModifyIndex: f.index}
}

func (f *fakeKV) Put(_ context.Context, key string, value []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(key, value, f.kvs[key].Session)
	return nil
}

func (f *fakeKV) CAS(_ context.Context, key string, value []byte, idx uint64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failCAS > 0 {
		f.failCAS--
		f.index++ // someone else wrote
		if kv, ok := f.kvs[key]; ok {
			kv.ModifyIndex = f.index
			f.kvs[key] = kv
		}
		return false, nil
	}
	kv, ok := f.kvs[key]
	if (idx == 0 && ok) || (idx != 0 && (!ok || kv.ModifyIndex != idx)) {
		return false, nil
	}
	f.setLocked(key, value, kv.Session)
	return true, nil
}

func (f *fakeKV) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.kvs, key)
	f.index++
	return nil
}

func (f *fakeKV) DeleteCAS(_ context.Context, key string, idx uint64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if kv, ok := f.kvs[key]; !ok || kv.ModifyIndex != idx {
		return false, nil
	}
	delete(f.kvs, key)
	f.index++
	return true, nil
}

func (f *fakeKV) PutIfHeld(_ context.Context, key string, value []byte, lockKey, session string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if session == "" || f.kvs[lockKey].Session != session {
		return false, nil
	}
	f.setLocked(key, value, f.kvs[key].Session)
	return true, nil
}

func (f *fakeKV) CASIfHeld(ctx context.Context, key string, value []byte, idx uint64, lockKey, session string) (bool, error) {
	f.mu.Lock()
	held := session != "" && f.kvs[lockKey].Session == session
	f.mu.Unlock()
	if !held {
		return false, fmt.Errorf("cas %s: %w %s", key, consul.ErrNotHeld, lockKey)
	}
	return f.CAS(ctx, key, value, idx)
}

// leadBy makes node the holder of the leader lock, as the primary is when it publishes.
func (f *fakeKV) leadBy(t *testing.T, prefix, node string) {
	t.Helper()
	id, err := f.CreateSession(context.Background(), consul.SessionOptions{Name: "leader " + node})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := f.Acquire(context.Background(), prefix+"leader", id, []byte(`{"node":"`+node+`"}`)); err != nil || !ok {
		t.Fatalf("acquire leader: %v %v", ok, err)
	}
}

func (f *fakeKV) Acquire(_ context.Context, key, session string, value []byte) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sessions[session]; !ok {
		return false, fmt.Errorf("invalid session %s", session)
	}
	if kv, ok := f.kvs[key]; ok && kv.Session != "" && kv.Session != session {
		return false, nil
	}
	f.setLocked(key, value, session)
	return true, nil
}

func (f *fakeKV) Release(_ context.Context, key, session string, value []byte) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kv, ok := f.kvs[key]
	if !ok || kv.Session != session {
		return false, nil
	}
	f.setLocked(key, value, "")
	return true, nil
}

func (f *fakeKV) CreateSession(_ context.Context, o consul.SessionOptions) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	id := fmt.Sprintf("session-%d", f.nextID)
	f.sessions[id] = o
	return id, nil
}

func (f *fakeKV) RenewSession(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sessions[id]; !ok {
		return consul.ErrSessionGone
	}
	f.renewals++
	return nil
}

func (f *fakeKV) DestroySession(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, id)
	for k, kv := range f.kvs {
		if kv.Session == id {
			kv.Session = ""
			f.kvs[k] = kv
		}
	}
	return nil
}

func (f *fakeKV) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.kvs {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (f *fakeKV) value(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.kvs[key].Value)
}

func testRecord(t time.Time) snapshot.Record {
	id := snapshot.NewID(t)
	return snapshot.Record{ID: id, Backend: "local", Store: "local:/snapshots", Path: snapshot.ObjectName("", id, "zstd"),
		Size: 100, SHA256: strings.Repeat("0f", 32), Compress: "zstd", GTID: "0-1-5", BinlogFile: "mysql-bin.000001",
		BinlogPos: 4, Flavor: "mariadb", ServerID: 1, Created: t.UTC(), Completed: t.UTC().Add(time.Minute)}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestConsulCatalog_KeyLayout(t *testing.T) {
	ctx := context.Background()
	kv := newFakeKV()
	kv.leadBy(t, "service/mysql/", "node1")
	cat := NewCatalog(kv, "service/mysql/", "node1", discard())
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	r1, r2 := testRecord(t0), testRecord(t0.Add(time.Hour))
	if err := cat.Publish(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if err := cat.Publish(ctx, r1); err != nil { // older, published late: not latest
		t.Fatal(err)
	}
	want := []string{"service/mysql/leader", "service/mysql/snapshots/" + r1.ID, "service/mysql/snapshots/" + r2.ID, "service/mysql/snapshots/latest"}
	if got := kv.keys(); !slices.Equal(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	latest, err := cat.Latest(ctx)
	if err != nil || latest == nil || latest.ID != r2.ID {
		t.Fatalf("latest = %+v, %v; want %s", latest, err, r2.ID)
	}
	var stored snapshot.Record
	if err := json.Unmarshal([]byte(kv.value("service/mysql/snapshots/"+r1.ID)), &stored); err != nil || stored != r1 {
		t.Fatalf("stored record %+v, %v", stored, err)
	}
	recs, err := cat.List(ctx)
	if err != nil || len(recs) != 2 || recs[0].ID != r1.ID || recs[1].ID != r2.ID {
		t.Fatalf("List = %+v, %v", recs, err)
	}

	// Deleting the latest moves latest to the newest remaining one; deleting the last removes it.
	if err := cat.Delete(ctx, r2.ID); err != nil {
		t.Fatal(err)
	}
	if latest, _ := cat.Latest(ctx); latest == nil || latest.ID != r1.ID {
		t.Fatalf("latest after deleting %s = %+v", r2.ID, latest)
	}
	if err := cat.Delete(ctx, r1.ID); err != nil {
		t.Fatal(err)
	}
	if latest, _ := cat.Latest(ctx); latest != nil {
		t.Fatalf("latest after deleting all = %+v", latest)
	}
	if got := kv.keys(); !slices.Equal(got, []string{"service/mysql/leader"}) {
		t.Fatalf("keys left besides the leader's: %v", got)
	}
	if err := cat.Delete(ctx, "../leader"); err == nil {
		t.Error("Delete accepted a key outside snapshots/")
	}

	p := snapshot.BinlogProgress{ServerID: 1, File: "mysql-bin.000007", Object: "binlogs/1/x", EndGTID: "0-1-9"}
	if err := cat.SetBinlogProgress(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got := kv.value("service/mysql/binlogs/last"); !strings.Contains(got, `"file":"mysql-bin.000007"`) {
		t.Errorf("binlogs/last = %s", got)
	}
	if got, err := cat.BinlogProgress(ctx); err != nil || got == nil || got.File != p.File || got.EndGTID != p.EndGTID {
		t.Errorf("BinlogProgress = %+v, %v", got, err)
	}
}

func TestConsulCatalog_PublishRetriesARacedLatest(t *testing.T) {
	ctx := context.Background()
	kv := newFakeKV()
	kv.leadBy(t, "p/", "n")
	cat := NewCatalog(kv, "p/", "n", discard())
	if err := cat.Publish(ctx, testRecord(time.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	r := testRecord(time.Now())
	kv.failCAS = 3
	if err := cat.Publish(ctx, r); err != nil {
		t.Fatal(err)
	}
	if latest, _ := cat.Latest(ctx); latest.ID != r.ID {
		t.Errorf("latest %s, want %s", latest.ID, r.ID)
	}
	kv.failCAS = casRetries + 1
	if err := cat.Publish(ctx, testRecord(time.Now().Add(time.Hour))); err == nil || !strings.Contains(err.Error(), "kept changing") {
		t.Errorf("Publish against an endless race = %v", err)
	}
}

func TestConsulCatalog_PublishRefusesAnIncompleteRecord(t *testing.T) {
	kv := newFakeKV()
	cat := NewCatalog(kv, "p/", "n", discard())
	r := testRecord(time.Now())
	r.SHA256 = ""
	if err := cat.Publish(context.Background(), r); err == nil {
		t.Fatal("published a record without a checksum")
	}
	if got := kv.keys(); len(got) != 0 {
		t.Errorf("keys written: %v", got)
	}
}

func TestConsulCatalog_BackupLock(t *testing.T) {
	ctx := context.Background()
	kv := newFakeKV()
	a := NewCatalog(kv, "p/", "node-a", discard())
	b := NewCatalog(kv, "p/", "node-b", discard())
	unlock, err := a.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := kv.value("p/backup-lock"); !strings.Contains(v, `"node":"node-a"`) {
		t.Errorf("lock value %s", v)
	}
	_, err = b.Lock(ctx)
	if !errors.Is(err, snapshot.ErrLocked) || !strings.Contains(err.Error(), "node-a since") {
		t.Fatalf("second Lock = %v, want ErrLocked naming node-a", err)
	}
	kv.mu.Lock()
	sessions := len(kv.sessions)
	opts := kv.sessions["session-1"]
	kv.mu.Unlock()
	if sessions != 1 {
		t.Errorf("%d sessions live; the loser's session must be destroyed", sessions)
	}
	if opts.TTL < consul.MinSessionTTL || opts.Behavior != consul.BehaviorRelease || opts.LockDelay != 0 {
		t.Errorf("lock session options %+v", opts)
	}
	unlock()
	unlock() // idempotent
	kv.mu.Lock()
	sessions = len(kv.sessions)
	kv.mu.Unlock()
	if sessions != 0 {
		t.Errorf("%d sessions live after unlock", sessions)
	}
	unlockB, err := b.Lock(ctx)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlockB()
}

// A node that must re-seed and has only the snapshot it came from asks for a newer one; the
// request stays until a newer snapshot is published, and List never mistakes it for one.
func TestConsulCatalog_SnapshotRequest(t *testing.T) {
	ctx := context.Background()
	kv := newFakeKV()
	kv.leadBy(t, "service/mysql/", "node1")
	cat := NewCatalog(kv, "service/mysql/", "node1", discard())
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	old := testRecord(t0)
	if err := cat.Publish(ctx, old); err != nil {
		t.Fatal(err)
	}
	if r, err := cat.SnapshotRequested(ctx); r != nil || err != nil {
		t.Fatalf("request before any: %+v, %v", r, err)
	}
	req := snapshot.SnapshotRequest{Node: "node2", Reason: "errant", After: old.ID, Requested: t0}
	if err := cat.RequestSnapshot(ctx, req); err != nil {
		t.Fatal(err)
	}
	got, err := cat.SnapshotRequested(ctx)
	if err != nil || got == nil || *got != req {
		t.Fatalf("request = %+v, %v; want %+v", got, err, req)
	}
	if recs, err := cat.List(ctx); err != nil || len(recs) != 1 {
		t.Fatalf("List with a request pending: %v, %v", recs, err)
	}
	if got.FulfilledBy(&old) || got.FulfilledBy(nil) {
		t.Error("the snapshot the request asked past fulfils it")
	}
	if newer := testRecord(t0.Add(time.Hour)); !got.FulfilledBy(&newer) {
		t.Error("a newer snapshot does not fulfil the request")
	}
	if !(snapshot.SnapshotRequest{}).FulfilledBy(&old) {
		t.Error("a request made with no snapshot is not fulfilled by the first one")
	}
	if err := cat.ClearSnapshotRequest(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := cat.SnapshotRequested(ctx); r != nil || err != nil {
		t.Fatalf("request after clear: %+v, %v", r, err)
	}
}

// Only the lock holder publishes: a deposed primary or a quarantined node that finished a
// backup must not make it what new replicas restore.
func TestConsulCatalog_PublishOnlyByTheLockHolder(t *testing.T) {
	ctx := context.Background()
	kv := newFakeKV()
	cat := NewCatalog(kv, "p/", "node1", discard())
	rec := testRecord(time.Now())
	if err := cat.Publish(ctx, rec); !errors.Is(err, ErrNotPrimary) || !strings.Contains(err.Error(), "the lock is free") {
		t.Fatalf("publish with the lock free: %v, want ErrNotPrimary", err)
	}
	kv.leadBy(t, "p/", "node2")
	if err := cat.Publish(ctx, rec); !errors.Is(err, ErrNotPrimary) || !strings.Contains(err.Error(), "node2 holds it") {
		t.Fatalf("publish while node2 holds the lock: %v, want ErrNotPrimary", err)
	}
	if got, _ := cat.Latest(ctx); got != nil {
		t.Fatalf("latest = %+v after refused publishes", got)
	}
	if kv, _, _ := kv.Get(ctx, "p/snapshots/"+rec.ID); kv != nil {
		t.Fatal("a refused snapshot was recorded under snapshots/<id>")
	}
}

// TestConsulCatalog_SetVerified: a drill's outcome lands on snapshots/<id> and on latest
// while latest is that snapshot, keeps every other field (unknown ones too), survives a raced
// CAS, clears an earlier error on success, and never resurrects a pruned record.
func TestConsulCatalog_SetVerified(t *testing.T) {
	ctx := context.Background()
	kv := newFakeKV()
	kv.leadBy(t, "p/", "n")
	cat := NewCatalog(kv, "p/", "replica-2", discard()) // not the leader: drills run on replicas
	lead := NewCatalog(kv, "p/", "n", discard())
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	r1, r2 := testRecord(t0), testRecord(t0.Add(time.Hour))
	for _, r := range []snapshot.Record{r1, r2} {
		if err := lead.Publish(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// A field from a later version survives the patch.
	kv.setLocked("p/snapshots/"+r2.ID, []byte(strings.Replace(kv.value("p/snapshots/"+r2.ID), `{"id"`, `{"future":7,"id"`, 1)), "")

	at := t0.Add(2 * time.Hour)
	kv.failCAS = 2
	if err := cat.SetVerified(ctx, r2.ID, at, "CHECK TABLE app.t: Corrupt"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"p/snapshots/" + r2.ID, "p/snapshots/latest"} {
		var got snapshot.Record
		if err := json.Unmarshal([]byte(kv.value(key)), &got); err != nil {
			t.Fatal(err)
		}
		if !got.VerifiedAt.Equal(at) || got.VerifyError != "CHECK TABLE app.t: Corrupt" || !got.FailedDrill() || got.SHA256 != r2.SHA256 || got.Path != r2.Path {
			t.Errorf("%s after a failed drill = %+v", key, got)
		}
	}
	if !strings.Contains(kv.value("p/snapshots/"+r2.ID), `"future":7`) {
		t.Errorf("the unknown field was lost: %s", kv.value("p/snapshots/"+r2.ID))
	}
	// A passing drill clears the error.
	if err := cat.SetVerified(ctx, r2.ID, at.Add(time.Minute), ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := cat.Latest(ctx); got == nil || !got.Verified() || got.VerifyError != "" {
		t.Errorf("latest after a passing drill = %+v", got)
	}
	// An older snapshot's drill leaves latest (another snapshot) alone.
	before := kv.value("p/snapshots/latest")
	if err := cat.SetVerified(ctx, r1.ID, at, ""); err != nil {
		t.Fatal(err)
	}
	if kv.value("p/snapshots/latest") != before {
		t.Error("the drill of an older snapshot rewrote latest")
	}
	// A pruned snapshot is not written again.
	if err := lead.Delete(ctx, r1.ID); err != nil {
		t.Fatal(err)
	}
	if err := cat.SetVerified(ctx, r1.ID, at, ""); !errors.Is(err, snapshot.ErrNoSnapshot) {
		t.Errorf("SetVerified of a pruned snapshot = %v, want ErrNoSnapshot", err)
	}
	if slices.Contains(kv.keys(), "p/snapshots/"+r1.ID) {
		t.Error("SetVerified resurrected a pruned record")
	}
}
