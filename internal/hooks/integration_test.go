//go:build integration

package hooks

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/consul"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// TestHooks_WithConsul wires the hooks as mysqlpilot does: the health loop feeds a TTL check,
// and OnChange hooks watch the leader key and the service. A change must reach them within 1s.
func TestHooks_WithConsul(t *testing.T) {
	h := harness.StartConsul(t)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	c, err := consul.New(consul.Options{Address: h.HTTPAddr()}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}

	var healthy atomic.Bool
	healthy.Store(true)
	keys := make(chan *consul.KV, 16)
	services := make(chan []consul.ServiceEntry, 16)
	hooks := Hooks{
		OnStart: func(ctx context.Context) error {
			return c.Register(ctx, consul.Service{ID: "mysql-a", Name: "mysql", Port: 3306, CheckTTL: 5 * time.Second})
		},
		Health: &Health{
			Interval: 100 * time.Millisecond,
			Check: func(context.Context) error {
				if !healthy.Load() {
					return errors.New("mysqld down")
				}
				return nil
			},
			OnResult: func(ctx context.Context, err error) {
				status, note := consul.StatusPassing, "ok"
				if err != nil {
					status, note = consul.StatusCritical, err.Error()
				}
				if err := c.UpdateTTL(ctx, "service:mysql-a", status, note); err != nil && ctx.Err() == nil {
					t.Errorf("UpdateTTL: %v", err)
				}
			},
		},
		OnChange: []OnChange{
			{Key: "service/mysql/leader", Run: func(_ context.Context, ch Change) error { keys <- ch.KV; return nil }},
			{Service: "mysql", Run: func(_ context.Context, ch Change) error { services <- ch.Services; return nil }},
		},
		Watcher:  c,
		PostStop: func(ctx context.Context) error { return c.Deregister(ctx, "mysql-a") },
	}
	done := make(chan error, 1)
	go func() { done <- hooks.Run(ctx, log) }()

	if kv := next(t, keys); kv != nil {
		t.Fatalf("initial leader key = %+v, want absent", kv)
	}
	start := time.Now()
	if err := c.Put(ctx, "service/mysql/leader", []byte("mysql-a")); err != nil {
		t.Fatal(err)
	}
	kv := next(t, keys)
	keyLatency := time.Since(start)
	if kv == nil || string(kv.Value) != "mysql-a" {
		t.Fatalf("leader key = %+v", kv)
	}

	waitStatus := func(want string) time.Duration {
		start := time.Now()
		for {
			es := next(t, services)
			if len(es) == 1 && es[0].Status == want {
				return time.Since(start)
			}
		}
	}
	waitStatus(consul.StatusPassing)
	healthy.Store(false) // detected on the next check, at most 100ms later
	healthLatency := waitStatus(consul.StatusCritical)
	t.Logf("onChange latency: key %s, service health %s (including up to 100ms of health interval)", keyLatency, healthLatency)
	if keyLatency >= time.Second || healthLatency >= time.Second {
		t.Errorf("onChange latency key %s, health %s; want < 1s", keyLatency, healthLatency)
	}

	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if es, _, err := c.Service(t.Context(), "mysql", "", false); err != nil || len(es) != 0 {
		t.Errorf("after postStop: %+v, %v; want deregistered", es, err)
	}
}

func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no change within 5s")
		panic("unreachable")
	}
}
