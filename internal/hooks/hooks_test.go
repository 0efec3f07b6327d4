package hooks

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/consul"
)

var _ Watcher = (*consul.Client)(nil)

// recorder collects hook events in order, and signals each one.
type recorder struct {
	mu     sync.Mutex
	events []string
	notify chan string
}

func newRecorder() *recorder { return &recorder{notify: make(chan string, 1024)} }

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select { // waiters only need the latest events
	case r.notify <- e:
	default:
	}
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// waitFor waits until event e is recorded.
func (r *recorder) waitFor(t *testing.T, e string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got := <-r.notify:
			if got == e {
				return
			}
		case <-timeout:
			t.Fatalf("no %q within 5s; events: %v", e, r.list())
		}
	}
}

// fakeWatcher delivers scripted values, then blocks until its context ends.
type fakeWatcher struct {
	services [][]consul.ServiceEntry
	keys     []*consul.KV
}

func (f *fakeWatcher) WatchService(ctx context.Context, _, _ string, _ bool, onChange func([]consul.ServiceEntry)) {
	for _, es := range f.services {
		onChange(es)
	}
	<-ctx.Done()
}

func (f *fakeWatcher) WatchKey(ctx context.Context, _ string, onChange func(*consul.KV)) {
	for _, kv := range f.keys {
		onChange(kv)
	}
	<-ctx.Done()
}

func TestRun_Order(t *testing.T) {
	rec := newRecorder()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var postStopped atomic.Bool
	reports := make(chan struct{}, 1)
	h := Hooks{
		OnStart: func(context.Context) error { rec.add("onStart"); return nil },
		Health: &Health{
			Interval: 5 * time.Millisecond,
			Check:    func(context.Context) error { return nil },
			OnResult: func(_ context.Context, err error) {
				if postStopped.Load() {
					t.Error("health reported after postStop began")
				}
				rec.add("health")
				select {
				case reports <- struct{}{}:
				default:
				}
			},
		},
		Periodic: []Periodic{{
			Name:     "tick",
			Interval: 5 * time.Millisecond,
			Run:      func(context.Context) error { rec.add("periodic"); return nil },
		}},
		OnChange: []OnChange{{
			Key: "k",
			Run: func(_ context.Context, c Change) error { rec.add("change"); return nil },
		}},
		Watcher: &fakeWatcher{keys: []*consul.KV{{Key: "k", Value: []byte("v")}}},
		PreStop: func(ctx context.Context) error {
			rec.add("preStop")
			// The health loop still reports during PreStop (a handover keeps its session).
			// Drain reports from before preStop, then wait for a fresh one.
			for len(reports) > 0 {
				<-reports
			}
			select {
			case <-reports:
			case <-time.After(5 * time.Second):
				t.Error("no health report during preStop")
			}
			rec.add("preStop done")
			return nil
		},
		PostStop: func(context.Context) error { postStopped.Store(true); rec.add("postStop"); return nil },
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, nil) }()

	rec.waitFor(t, "health")
	rec.waitFor(t, "periodic")
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after stop")
	}

	ev := rec.list()
	if ev[0] != "onStart" {
		t.Errorf("first event %q, want onStart (health must wait for it); events: %v", ev[0], ev)
	}
	if !slices.Contains(ev, "change") {
		t.Errorf("onChange hook never ran; events: %v", ev)
	}
	pre, preDone, post := slices.Index(ev, "preStop"), slices.Index(ev, "preStop done"), slices.Index(ev, "postStop")
	if pre < 0 || preDone < pre || post < preDone || post != len(ev)-1 {
		t.Errorf("stop order wrong, want preStop < preStop done < postStop (last); events: %v", ev)
	}
	if !slices.Contains(ev[pre:preDone], "health") {
		t.Errorf("no health report during preStop; events: %v", ev)
	}
}

func TestRun_OnStartFailureStopsEverything(t *testing.T) {
	called := false
	h := Hooks{
		OnStart: func(context.Context) error { return errors.New("datadir missing") },
		Health: &Health{
			Check:    func(context.Context) error { called = true; return nil },
			OnResult: func(context.Context, error) { called = true },
		},
		PreStop:  func(context.Context) error { called = true; return nil },
		PostStop: func(context.Context) error { called = true; return nil },
	}
	err := h.Run(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "hooks: onStart: datadir missing") {
		t.Fatalf("Run = %v, want the onStart error", err)
	}
	if called {
		t.Error("a hook ran after onStart failed")
	}
}

func TestRun_StopHooksAreBounded(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	stop()
	postRan := false
	h := Hooks{
		StopTimeout: 20 * time.Millisecond,
		PreStop: func(ctx context.Context) error {
			<-ctx.Done() // a handover that never finishes
			return ctx.Err()
		},
		PostStop: func(context.Context) error { postRan = true; return errors.New("deregister failed") },
	}
	start := time.Now()
	err := h.Run(ctx, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "hooks: preStop") {
		t.Errorf("Run = %v, want preStop's deadline", err)
	}
	if !postRan || !strings.Contains(err.Error(), "hooks: postStop: deregister failed") {
		t.Errorf("postStop must run after a preStop timeout; Run = %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %s with a 20ms stop timeout", took)
	}
}

func TestRun_OnChangeNeedsWatcher(t *testing.T) {
	h := Hooks{OnChange: []OnChange{{Key: "k", Run: func(context.Context, Change) error { return nil }}}}
	if err := h.Run(context.Background(), nil); err == nil {
		t.Fatal("Run without a Watcher succeeded")
	}
}

func TestHealth_TimeoutBoundsEachCheck(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	results := make(chan error, 10)
	h := Health{
		Interval: time.Hour, // only the immediate first check runs
		Timeout:  20 * time.Millisecond,
		Check: func(ctx context.Context) error {
			<-ctx.Done() // mysqld hangs
			return ctx.Err()
		},
		OnResult: func(_ context.Context, err error) { results <- err },
	}
	done := make(chan struct{})
	go func() { h.Loop(ctx, nil); close(done) }()
	select {
	case err := <-results:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("result = %v, want a deadline error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a hanging check produced no result")
	}
	stop()
	<-done
}

func TestHealth_ReportsEveryResult(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	script := []error{nil, errors.New("down"), errors.New("down"), nil}
	var n atomic.Int32
	results := make(chan error, len(script))
	h := Health{
		Interval: time.Millisecond,
		Check: func(context.Context) error {
			i := int(n.Add(1)) - 1
			if i < len(script) {
				return script[i]
			}
			<-ctx.Done()
			return ctx.Err()
		},
		OnResult: func(_ context.Context, err error) { results <- err },
	}
	go h.Loop(ctx, nil)
	for i, want := range script {
		select {
		case got := <-results:
			if (got == nil) != (want == nil) {
				t.Errorf("result %d = %v, want %v", i, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("result %d missing", i)
		}
	}
}

func TestPeriodic_RunsDoNotOverlap(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var running, maxRunning, runs atomic.Int32
	finished := make(chan struct{}, 100)
	p := Periodic{
		Name:     "slow",
		Interval: time.Millisecond,
		Run: func(ctx context.Context) error {
			cur := running.Add(1)
			defer running.Add(-1)
			for {
				m := maxRunning.Load()
				if cur <= m || maxRunning.CompareAndSwap(m, cur) {
					break
				}
			}
			select { // a run that outlasts several intervals
			case <-time.After(5 * time.Millisecond):
			case <-ctx.Done():
			}
			runs.Add(1)
			finished <- struct{}{}
			return errors.New("failed, and the next run still happens")
		},
	}
	done := make(chan struct{})
	go func() { p.Loop(ctx, nil); close(done) }()
	for i := range 5 {
		select {
		case <-finished:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d runs", i)
		}
	}
	stop()
	<-done
	if m := maxRunning.Load(); m != 1 {
		t.Errorf("%d runs overlapped, want 1 at a time", m)
	}
}

func TestPeriodic_FirstRunAfterOneInterval(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan time.Time, 1)
	start := time.Now()
	p := Periodic{Name: "snapshot", Interval: 50 * time.Millisecond, Run: func(context.Context) error {
		select {
		case ran <- time.Now():
		default:
		}
		return nil
	}}
	go p.Loop(ctx, nil)
	defer stop()
	select {
	case at := <-ran:
		if d := at.Sub(start); d < 50*time.Millisecond {
			t.Errorf("first run after %s, want one interval (50ms)", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("never ran")
	}
}

func TestOnChange_RunsOnlyOnRealChanges(t *testing.T) {
	a := consul.ServiceEntry{Node: "n1", ID: "mysql-a", Port: 3306, Status: "passing", Tags: []string{"primary"}}
	aCritical := a
	aCritical.Status = "critical"
	b := consul.ServiceEntry{Node: "n2", ID: "mysql-b", Port: 3306, Status: "passing"}
	kv1 := &consul.KV{Key: "k", Value: []byte("x"), ModifyIndex: 5}
	kv1again := &consul.KV{Key: "k", Value: []byte("x"), ModifyIndex: 5}
	kv1rewritten := &consul.KV{Key: "k", Value: []byte("x"), ModifyIndex: 9}
	w := &fakeWatcher{
		services: [][]consul.ServiceEntry{
			nil,            // starting state: none (reported)
			nil,            // same: skipped
			{a},            // reported
			{a},            // same: skipped
			{aCritical},    // health change: reported
			{aCritical, b}, // new instance: reported
			{aCritical, b}, // skipped
		},
		keys: []*consul.KV{nil, nil, kv1, kv1again, kv1rewritten, nil},
	}
	tests := []struct {
		name string
		o    OnChange
		want int
	}{
		{"service", OnChange{Service: "mysql"}, 4},
		{"key", OnChange{Key: "k"}, 4}, // nil, kv1, kv1rewritten, nil
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, stop := context.WithCancel(context.Background())
			var got []Change
			tt.o.Run = func(_ context.Context, c Change) error {
				got = append(got, c)
				if len(got) == tt.want {
					stop()
				}
				return nil
			}
			done := make(chan struct{})
			go func() { tt.o.Loop(ctx, w, nil); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				stop()
				<-done
			}
			if len(got) != tt.want {
				t.Fatalf("Run called %d times, want %d: %+v", len(got), tt.want, got)
			}
		})
	}
}

func TestOnChange_NeedsExactlyOneTarget(t *testing.T) {
	for _, o := range []OnChange{{}, {Service: "s", Key: "k"}} {
		called := false
		o.Run = func(context.Context, Change) error { called = true; return nil }
		o.Loop(context.Background(), &fakeWatcher{}, nil) // returns at once
		if called {
			t.Errorf("%+v ran", o)
		}
	}
}
