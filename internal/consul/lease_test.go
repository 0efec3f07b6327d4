package consul

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeSessions counts renewals; after goneAfter of them the session is gone.
type fakeSessions struct {
	mu        sync.Mutex
	renewals  int
	goneAfter int
}

func (f *fakeSessions) CreateSession(context.Context, SessionOptions) (string, error) {
	return "s1", nil
}

func (f *fakeSessions) RenewSession(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renewals++
	if f.goneAfter > 0 && f.renewals > f.goneAfter {
		return fmt.Errorf("consul: renew session %s: %w", id, ErrSessionGone)
	}
	return nil
}

func (f *fakeSessions) DestroySession(context.Context, string) error { return nil }

func (f *fakeSessions) Acquire(context.Context, string, string, []byte) (bool, error) {
	return true, nil
}

func (f *fakeSessions) Release(context.Context, string, string, []byte) (bool, error) {
	return true, nil
}

func (f *fakeSessions) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.renewals
}

func TestLease_KeepAliveRenewsUntilStopped(t *testing.T) {
	f := &fakeSessions{}
	l := &Lease{s: f, ID: "s1", ttl: 30 * time.Millisecond} // renewed every 10ms
	stop := l.KeepAlive(func(err error) { t.Errorf("renewal failed: %v", err) })
	eventually(t, "3 renewals", func() bool { return f.count() >= 3 })
	stop()
	stop() // safe twice
	n := f.count()
	time.Sleep(50 * time.Millisecond)
	if f.count() != n {
		t.Error("renewals went on after stop")
	}
}

func TestLease_KeepAliveEndsWhenTheSessionIsGone(t *testing.T) {
	f := &fakeSessions{goneAfter: 2}
	l := &Lease{s: f, ID: "s1", ttl: 30 * time.Millisecond}
	var mu sync.Mutex
	var fails []error
	stop := l.KeepAlive(func(err error) { mu.Lock(); fails = append(fails, err); mu.Unlock() })
	defer stop()
	eventually(t, "the failed renewal", func() bool { mu.Lock(); defer mu.Unlock(); return len(fails) > 0 })
	time.Sleep(50 * time.Millisecond) // time for renewals that should not happen
	mu.Lock()
	defer mu.Unlock()
	if len(fails) != 1 || !errors.Is(fails[0], ErrSessionGone) {
		t.Errorf("failures = %v, want one ErrSessionGone and no renewal after it", fails)
	}
	if n := f.count(); n != 3 {
		t.Errorf("%d renewals, want 3 (the third found the session gone)", n)
	}
}

// eventually waits up to 5s for cond (a loaded machine delays tickers).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 5s", what)
		}
	}
}
