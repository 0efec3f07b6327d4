//go:build integration

package consul

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// newClient starts a Consul dev agent for this test and returns a ready Client for it.
func newClient(t *testing.T) (*Client, *harness.Consul) {
	t.Helper()
	h := harness.StartConsul(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(Options{Address: h.HTTPAddr()}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c, h
}

// goWatch runs watch in a goroutine until the test ends, and waits for it before the test's
// cleanups run (the watch logs through t).
func goWatch(t *testing.T, watch func(ctx context.Context)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { watch(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// recv waits for the next value on ch, failing the test after timeout.
func recv[T any](t *testing.T, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("no %s within %s", what, timeout)
		panic("unreachable")
	}
}

// waitServiceStatus waits (blocking queries) until the service instance id has status want, and
// returns when that was observed.
func waitServiceStatus(t *testing.T, c *Client, name, id, want string, timeout time.Duration) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var index uint64
	for {
		entries, next, err := serviceBlocking(ctx, c, name, index, timeout)
		if err != nil {
			t.Fatalf("waiting for %s to be %s: %v", id, want, err)
		}
		for _, e := range entries {
			if e.ID == id && e.Status == want {
				return time.Now()
			}
		}
		index = nextIndex(index, next)
	}
}

// getBlocking reads key with a blocking query (the product watches prefixes only; these
// tests time single keys).
func getBlocking(c *Client, ctx context.Context, key string, waitIndex uint64, maxWait time.Duration) (*KV, uint64, error) {
	ctx, cancel := c.reqCtx(ctx, blockingWait(waitIndex, maxWait))
	defer cancel()
	q := c.query(ctx)
	q.WaitIndex, q.WaitTime = waitIndex, maxWait
	p, meta, err := c.api.KV().Get(key, q)
	if err != nil {
		return nil, 0, err
	}
	return fromPair(p), meta.LastIndex, nil
}

// serviceBlocking reads the instances of a service with a blocking query, as Service does.
func serviceBlocking(ctx context.Context, c *Client, name string, waitIndex uint64, maxWait time.Duration) ([]ServiceEntry, uint64, error) {
	ctx, cancel := c.reqCtx(ctx, blockingWait(waitIndex, maxWait))
	defer cancel()
	q := c.query(ctx)
	q.WaitIndex, q.WaitTime = waitIndex, maxWait
	entries, meta, err := c.api.Health().Service(name, "", false, q)
	if err != nil {
		return nil, 0, err
	}
	var out []ServiceEntry
	for _, e := range entries {
		if e != nil && e.Service != nil {
			out = append(out, ServiceEntry{ID: e.Service.ID, Status: e.Checks.AggregatedStatus()})
		}
	}
	return out, meta.LastIndex, nil
}

func mysqlService(id string, ttl time.Duration) Service {
	return Service{
		ID:       id,
		Name:     "mysql",
		Address:  "10.0.0.5",
		Port:     3306,
		Tags:     []string{"primary"},
		Meta:     map[string]string{"server_id": "7"},
		CheckTTL: ttl,
	}
}

func TestService_RegisterVisibleInCatalog(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	s := mysqlService("mysql-a", 5*time.Second)
	if err := c.Register(ctx, s); err != nil {
		t.Fatal(err)
	}

	// The raw catalog, as other tools see it.
	cat, _, err := c.api.Catalog().Service("mysql", "", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if len(cat) != 1 {
		t.Fatalf("catalog has %d instances of mysql, want 1", len(cat))
	}
	got := cat[0]
	if got.ServiceID != "mysql-a" || got.ServiceAddress != "10.0.0.5" || got.ServicePort != 3306 ||
		!slices.Equal(got.ServiceTags, []string{"primary"}) || got.ServiceMeta["server_id"] != "7" {
		t.Errorf("catalog entry = %+v", got)
	}

	// Through the adapter: critical until the first pass, then passing.
	entries, _, err := c.Service(ctx, "mysql", "primary", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Status != StatusCritical || entries[0].Node == "" {
		t.Fatalf("entries before the first pass = %+v, want one critical", entries)
	}
	if err := c.UpdateTTL(ctx, "service:mysql-a", StatusPassing, "ok"); err != nil {
		t.Fatal(err)
	}
	passing, _, err := c.Service(ctx, "mysql", "primary", true)
	if err != nil {
		t.Fatal(err)
	}
	want := ServiceEntry{Node: entries[0].Node, ID: "mysql-a", Address: "10.0.0.5", Port: 3306,
		Tags: []string{"primary"}, Meta: map[string]string{"server_id": "7"}, Status: StatusPassing}
	if len(passing) != 1 || !equalEntry(passing[0], want) {
		t.Errorf("passing entries = %+v, want [%+v]", passing, want)
	}
	if other, _, err := c.Service(ctx, "mysql", "replica", false); err != nil || len(other) != 0 {
		t.Errorf("tag filter: entries with tag replica = %+v, %v", other, err)
	}
}

func equalEntry(a, b ServiceEntry) bool {
	return a.Node == b.Node && a.ID == b.ID && a.Address == b.Address && a.Port == b.Port &&
		slices.Equal(a.Tags, b.Tags) && a.Status == b.Status && len(a.Meta) == len(b.Meta) &&
		a.Meta["server_id"] == b.Meta["server_id"]
}

func TestService_TTLCheckTurnsCriticalWhenUpdatesStop(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	const ttl = 2 * time.Second
	if err := c.Register(ctx, mysqlService("mysql-a", ttl)); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateTTL(ctx, "service:mysql-a", StatusPassing, ""); err != nil {
		t.Fatal(err)
	}
	waitServiceStatus(t, c, "mysql", "mysql-a", StatusPassing, 5*time.Second)

	// An explicit critical report (the health hook failing) shows at once.
	start := time.Now()
	if err := c.UpdateTTL(ctx, "service:mysql-a", StatusCritical, "mysqld not answering"); err != nil {
		t.Fatal(err)
	}
	took := waitServiceStatus(t, c, "mysql", "mysql-a", StatusCritical, 5*time.Second).Sub(start)
	t.Logf("explicit critical visible after %s", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("explicit critical took %s, want < 1s", took)
	}

	// Silence (the health loop stuck or dead): critical once the TTL runs out.
	if err := c.UpdateTTL(ctx, "service:mysql-a", StatusPassing, ""); err != nil {
		t.Fatal(err)
	}
	last := time.Now()
	waitServiceStatus(t, c, "mysql", "mysql-a", StatusPassing, 5*time.Second)
	took = waitServiceStatus(t, c, "mysql", "mysql-a", StatusCritical, 4*ttl).Sub(last)
	t.Logf("check TTL %s: critical %s after the last pass", ttl, took.Round(time.Millisecond))
	// The agent's TTL timer is exact (2.0s measured on an idle machine); the slack is for a
	// loaded CI box.
	if took < ttl-100*time.Millisecond || took > ttl+2*time.Second {
		t.Errorf("critical after %s, want about %s", took, ttl)
	}
}

func TestService_Deregister(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	if err := c.Register(ctx, mysqlService("mysql-a", 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.Deregister(ctx, "mysql-a"); err != nil {
		t.Fatal(err)
	}
	entries, _, err := c.Service(ctx, "mysql", "", false)
	if err != nil || len(entries) != 0 {
		t.Fatalf("after deregister: entries = %+v, %v", entries, err)
	}
	// A late health report must not bring it back.
	err = c.UpdateTTL(ctx, "service:mysql-a", StatusPassing, "")
	if !errors.Is(err, ErrNotRegistered) {
		t.Errorf("UpdateTTL after Deregister: err = %v, want ErrNotRegistered", err)
	}
	if entries, _, _ := c.Service(ctx, "mysql", "", false); len(entries) != 0 {
		t.Errorf("service came back: %+v", entries)
	}
	if err := c.Deregister(ctx, "mysql-a"); err != nil {
		t.Errorf("second Deregister: %v", err)
	}
}

func TestUpdateTTL_ReRegistersAfterAgentRestart(t *testing.T) {
	c, h := newClient(t)
	ctx := t.Context()
	if err := c.Register(ctx, mysqlService("mysql-a", 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateTTL(ctx, "service:mysql-a", StatusPassing, ""); err != nil {
		t.Fatal(err)
	}

	h.Restart() // a dev agent comes back empty
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	if entries, _, err := c.Service(ctx, "mysql", "", false); err != nil || len(entries) != 0 {
		t.Fatalf("after restart: entries = %+v, %v; want none (dev agent state is lost)", entries, err)
	}

	if err := c.UpdateTTL(ctx, "service:mysql-a", StatusPassing, "back"); err != nil {
		t.Fatalf("UpdateTTL after restart: %v", err)
	}
	entries, _, err := c.Service(ctx, "mysql", "", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].ID != "mysql-a" || entries[0].Port != 3306 || !slices.Equal(entries[0].Tags, []string{"primary"}) {
		t.Errorf("after re-registration: passing entries = %+v", entries)
	}
}

func TestWatchPrefix_SeesMembers(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	changes := make(chan []KV, 16)
	goWatch(t, func(ctx context.Context) {
		c.WatchPrefix(ctx, "service/mysql/members/", func(kvs []KV) { changes <- kvs })
	})
	if kvs := recv(t, changes, 5*time.Second, "initial read"); len(kvs) != 0 {
		t.Fatalf("initial = %+v, want empty", kvs)
	}
	start := time.Now()
	if err := c.Put(ctx, "service/mysql/members/b", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	kvs := recv(t, changes, 5*time.Second, "member b")
	t.Logf("prefix watch latency: %s", time.Since(start))
	if len(kvs) != 1 || kvs[0].Key != "service/mysql/members/b" {
		t.Fatalf("got %+v", kvs)
	}
	if err := c.Put(ctx, "service/mysql/members/a", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	kvs = recv(t, changes, 5*time.Second, "member a")
	if len(kvs) != 2 || kvs[0].Key != "service/mysql/members/a" {
		t.Fatalf("got %+v, want a then b", kvs)
	}
}

func TestSession_BoundToServiceCheck_LockReleasedWhenTTLUpdatesStop(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	const checkTTL = 5 * time.Second
	if err := c.Register(ctx, mysqlService("mysql-a", checkTTL)); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateTTL(ctx, "service:mysql-a", StatusPassing, ""); err != nil {
		t.Fatal(err)
	}
	sid, err := c.CreateSession(ctx, SessionOptions{
		Name:          "mysql-a leader",
		TTL:           15 * time.Second, // alone, this session could live 30s
		ServiceChecks: []string{"service:mysql-a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := c.Acquire(ctx, "service/mysql/leader", sid, []byte("mysql-a"))
	if err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	if err := c.UpdateTTL(ctx, "service:mysql-a", StatusPassing, "last pass"); err != nil {
		t.Fatal(err)
	}
	last := time.Now() // health updates stop here; the session is renewed as usual
	renewCtx, stopRenew := context.WithCancel(ctx)
	defer stopRenew()
	goWatch(t, func(context.Context) {
		for sleepCtx(renewCtx, time.Second) {
			_ = c.RenewSession(renewCtx, sid)
		}
	})

	// Block on the key until the lock is gone.
	var index uint64
	for {
		kv, next, err := getBlocking(c, ctx, "service/mysql/leader", index, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if kv != nil && kv.Session == "" {
			break
		}
		if time.Since(last) > 20*time.Second {
			t.Fatal("lock still held 20s after health updates stopped")
		}
		index = nextIndex(index, next)
	}
	took := time.Since(last)
	stopRenew()
	t.Logf("session bound to a %s TTL check: lock released %s after the last pass", checkTTL, took.Round(time.Millisecond))
	if took < checkTTL-200*time.Millisecond || took > checkTTL+2*time.Second {
		t.Errorf("released after %s, want about %s", took, checkTTL)
	}
	if err := c.RenewSession(ctx, sid); !errors.Is(err, ErrSessionGone) {
		t.Errorf("RenewSession after invalidation: err = %v, want ErrSessionGone", err)
	}
}

func TestLock_Contend(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	const key = "service/mysql/leader"
	a, err := c.CreateSession(ctx, SessionOptions{Name: "a", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateSession(ctx, SessionOptions{Name: "b", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Acquire(ctx, key, a, []byte("a")); err != nil || !ok {
		t.Fatalf("a: Acquire = %v, %v; want true", ok, err)
	}
	if ok, err := c.Acquire(ctx, key, b, []byte("b")); err != nil || ok {
		t.Fatalf("b: Acquire = %v, %v; want false while a holds it", ok, err)
	}
	kv, index, err := c.Get(ctx, key)
	if err != nil || kv == nil || kv.Session != a || string(kv.Value) != "a" {
		t.Fatalf("Get = %+v, %v; want held by a", kv, err)
	}
	if ok, err := c.Release(ctx, key, b, nil); err != nil || ok {
		t.Errorf("b: Release of a's lock = %v, %v; want false", ok, err)
	}

	// b waits on the key with a blocking query and takes the lock when a lets go.
	won := make(chan struct{}, 1)
	goWatch(t, func(ctx context.Context) {
		idx := index
		for ctx.Err() == nil {
			kv, next, err := getBlocking(c, ctx, key, idx, 10*time.Second)
			if err != nil {
				return
			}
			idx = nextIndex(idx, next)
			if kv != nil && kv.Session != "" {
				continue
			}
			if ok, _ := c.Acquire(ctx, key, b, []byte("b")); ok {
				won <- struct{}{}
				return
			}
		}
	})
	start := time.Now()
	if ok, err := c.Release(ctx, key, a, []byte("released by a")); err != nil || !ok {
		t.Fatalf("a: Release = %v, %v; want true", ok, err)
	}
	recv(t, won, 5*time.Second, "acquire by b")
	t.Logf("b took the lock %s after a released it (no lock delay after a release)", time.Since(start).Round(time.Millisecond))
	kv, _, err = c.Get(ctx, key)
	if err != nil || kv == nil || kv.Session != b {
		t.Fatalf("Get = %+v, %v; want held by b", kv, err)
	}
}

func TestLock_LockDelayBlocksReacquireAfterInvalidation(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	const key = "service/mysql/leader"
	const lockDelay = time.Second
	a, err := c.CreateSession(ctx, SessionOptions{Name: "a", TTL: 10 * time.Second, LockDelay: lockDelay})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateSession(ctx, SessionOptions{Name: "b", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Acquire(ctx, key, a, []byte("a")); err != nil || !ok {
		t.Fatalf("a: Acquire = %v, %v", ok, err)
	}
	start := time.Now()
	if err := c.DestroySession(ctx, a); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Acquire(ctx, key, b, []byte("b")); err != nil || ok {
		t.Fatalf("b: Acquire right after invalidation = %v, %v; want false (lock delay)", ok, err)
	}
	if kv, _, err := c.Get(ctx, key); err != nil || kv == nil || kv.Session != "" {
		t.Fatalf("Get during lock delay = %+v, %v; want the key free of any session", kv, err)
	}
	// Consul has no event for the end of a lock delay: poll with a deadline.
	var took time.Duration
	for {
		ok, err := c.Acquire(ctx, key, b, []byte("b"))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			took = time.Since(start)
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("b could not acquire 5s after the invalidation")
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	t.Logf("lock delay %s: b acquired %s after a was invalidated", lockDelay, took.Round(time.Millisecond))
	if took < lockDelay-50*time.Millisecond || took > lockDelay+time.Second {
		t.Errorf("acquired after %s, want about %s", took, lockDelay)
	}

	// Without a lock delay (the Options default, not Consul's 15s) re-acquire is immediate.
	if err := c.DestroySession(ctx, b); err != nil {
		t.Fatal(err)
	}
	d, err := c.CreateSession(ctx, SessionOptions{Name: "d", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Acquire(ctx, key, d, []byte("d")); err != nil || !ok {
		t.Errorf("Acquire right after invalidating a session without lock delay = %v, %v; want true", ok, err)
	}
}

func TestSession_GoneAfterDestroy(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	sid, err := c.CreateSession(ctx, SessionOptions{Name: "m", TTL: 10 * time.Second, Behavior: BehaviorDelete})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RenewSession(ctx, sid); err != nil {
		t.Fatalf("RenewSession of a live session: %v", err)
	}
	if ok, err := c.Acquire(ctx, "service/mysql/members/m", sid, []byte("{}")); err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	if err := c.DestroySession(ctx, sid); err != nil {
		t.Fatal(err)
	}
	err = c.RenewSession(ctx, sid)
	if !errors.Is(err, ErrSessionGone) {
		t.Fatalf("RenewSession after destroy: err = %v, want ErrSessionGone", err)
	}
	t.Logf("renew after destroy: %v", err)
	if kv, _, err := c.Get(ctx, "service/mysql/members/m"); err != nil || kv != nil {
		t.Errorf("member key after its delete-behavior session ended = %+v, %v; want deleted", kv, err)
	}
	if err := c.DestroySession(ctx, sid); err != nil {
		t.Errorf("second DestroySession: %v", err)
	}
}

func TestKV_CAS(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	const key = "service/mysql/snapshots/latest"
	if ok, err := c.CAS(ctx, key, []byte("v1"), 0); err != nil || !ok {
		t.Fatalf("CAS create = %v, %v", ok, err)
	}
	if ok, err := c.CAS(ctx, key, []byte("again"), 0); err != nil || ok {
		t.Fatalf("CAS create of an existing key = %v, %v; want false", ok, err)
	}
	kv, _, err := c.Get(ctx, key)
	if err != nil || kv == nil {
		t.Fatal(kv, err)
	}
	if ok, err := c.CAS(ctx, key, []byte("v2"), kv.ModifyIndex); err != nil || !ok {
		t.Fatalf("CAS at the current index = %v, %v", ok, err)
	}
	if ok, err := c.CAS(ctx, key, []byte("stale"), kv.ModifyIndex); err != nil || ok {
		t.Fatalf("CAS at a stale index = %v, %v; want false", ok, err)
	}
	if ok, err := c.DeleteCAS(ctx, key, kv.ModifyIndex); err != nil || ok {
		t.Fatalf("DeleteCAS at a stale index = %v, %v; want false", ok, err)
	}
	kv, _, _ = c.Get(ctx, key)
	if ok, err := c.DeleteCAS(ctx, key, kv.ModifyIndex); err != nil || !ok {
		t.Fatalf("DeleteCAS = %v, %v", ok, err)
	}
	if kv, _, err := c.Get(ctx, key); err != nil || kv != nil {
		t.Fatalf("after DeleteCAS: %+v, %v", kv, err)
	}
	if kvs, _, err := c.List(ctx, "service/mysql/"); err != nil || len(kvs) != 0 {
		t.Fatalf("List = %+v, %v", kvs, err)
	}
}

func TestWaitReady_NamesTheAddressWhenDown(t *testing.T) {
	c, h := newClient(t)
	h.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err := c.WaitReady(ctx)
	if err == nil {
		t.Fatal("WaitReady succeeded with the agent stopped")
	}
	t.Logf("WaitReady: %v", err)
	if want := "consul at " + h.HTTPAddr() + " unreachable"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestSession_TTLOnlyLastsUpToTwiceTTL(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 20s")
	}
	c, _ := newClient(t)
	ctx := t.Context()
	const ttl = MinSessionTTL
	sid, err := c.CreateSession(ctx, SessionOptions{Name: "ttl-only", TTL: ttl, NodeChecks: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := c.Acquire(ctx, "service/mysql/leader", sid, []byte("x"))
	if err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	start := time.Now()
	var index uint64
	for {
		kv, next, err := getBlocking(c, ctx, "service/mysql/leader", index, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if kv != nil && kv.Session == "" {
			break
		}
		if time.Since(start) > 3*ttl {
			t.Fatalf("lock still held %s after the last renewal", time.Since(start))
		}
		index = nextIndex(index, next)
	}
	took := time.Since(start)
	t.Logf("session TTL %s, never renewed: lock released after %s", ttl, took.Round(time.Millisecond))
	if took < ttl {
		t.Errorf("released after %s, before the TTL", took)
	}
	if took > 2*ttl+time.Second {
		t.Errorf("released after %s, later than 2x TTL", took)
	}
}

func TestSession_RefusedWhileBoundCheckIsCritical(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	if err := c.Register(ctx, mysqlService("mysql-a", 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// A freshly registered TTL check is critical until its first pass.
	opts := SessionOptions{Name: "leader", TTL: 10 * time.Second, ServiceChecks: []string{"service:mysql-a"}}
	_, err := c.CreateSession(ctx, opts)
	if err == nil {
		t.Fatal("CreateSession bound to a critical check succeeded")
	}
	t.Logf("CreateSession before the first pass: %v", err)
	if err := c.UpdateTTL(ctx, "service:mysql-a", StatusPassing, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSession(ctx, opts); err != nil {
		t.Fatalf("CreateSession after the first pass: %v", err)
	}
}
