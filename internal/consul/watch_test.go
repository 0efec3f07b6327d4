package consul

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// step is one scripted answer of a fake fetch.
type step struct {
	index uint64        // index to return
	err   error         // or an error
	took  time.Duration // how long the read "blocked" on the fake clock
}

// scriptedWatch runs a watcher over steps and returns the waitIndex of each call and every
// backoff sleep. The context is cancelled after the last step.
func scriptedWatch(t *testing.T, steps []step) (waits []uint64, sleeps []time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := time.Unix(0, 0)
	w := watcher{
		now: func() time.Time { return clock },
		sleep: func(_ context.Context, d time.Duration) bool {
			sleeps = append(sleeps, d)
			clock = clock.Add(d)
			return true
		},
		rand: func() float64 { return 0.999999 }, // top of the jitter range: delays read as the cap
		fetch: func(_ context.Context, waitIndex uint64) (uint64, error) {
			i := len(waits)
			waits = append(waits, waitIndex)
			if i >= len(steps) {
				cancel()
				return 0, context.Canceled
			}
			clock = clock.Add(steps[i].took)
			return steps[i].index, steps[i].err
		},
	}
	w.run(ctx)
	return waits, sleeps
}

const blocked = time.Second // a read that blocked until a change

func TestWatch_IndexRules(t *testing.T) {
	tests := []struct {
		name      string
		steps     []step
		wantWaits []uint64
	}{
		{
			name:      "first read does not block, later reads block on the last index",
			steps:     []step{{index: 5}, {index: 7, took: blocked}, {index: 9, took: blocked}},
			wantWaits: []uint64{0, 5, 7, 9},
		},
		{
			name:      "index going backwards resets to 0 then resumes",
			steps:     []step{{index: 50}, {index: 3, took: blocked}, {index: 4}, {index: 6, took: blocked}},
			wantWaits: []uint64{0, 50, 0, 4, 6},
		},
		{
			name:      "index 0 after the first read becomes 1, never a non-blocking 0",
			steps:     []step{{index: 0}, {index: 2, took: blocked}},
			wantWaits: []uint64{0, 1, 2},
		},
		{
			name:      "an error starts over from index 0 (the agent may have restarted)",
			steps:     []step{{index: 8}, {err: errors.New("connection refused")}, {index: 9, took: blocked}},
			wantWaits: []uint64{0, 8, 0, 9},
		},
		{
			name:      "a blocking read that times out unchanged keeps the index",
			steps:     []step{{index: 8}, {index: 8, took: time.Minute}, {index: 10, took: blocked}},
			wantWaits: []uint64{0, 8, 8, 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waits, _ := scriptedWatch(t, tt.steps)
			if !slices.Equal(waits, tt.wantWaits) {
				t.Errorf("wait indexes = %v, want %v", waits, tt.wantWaits)
			}
		})
	}
}

func TestWatch_Backoff(t *testing.T) {
	fail := step{err: errors.New("consul down")}
	ms := time.Millisecond
	tests := []struct {
		name       string
		steps      []step
		wantSleeps []time.Duration // rounded down to ms
	}{
		{
			name:       "errors back off exponentially from 100ms",
			steps:      []step{fail, fail, fail, fail},
			wantSleeps: []time.Duration{99 * ms, 199 * ms, 399 * ms, 799 * ms},
		},
		{
			name:       "backoff is capped at 5s",
			steps:      []step{fail, fail, fail, fail, fail, fail, fail, fail},
			wantSleeps: []time.Duration{99 * ms, 199 * ms, 399 * ms, 799 * ms, 1599 * ms, 3199 * ms, 4999 * ms, 4999 * ms},
		},
		{
			name:       "a success resets the backoff",
			steps:      []step{fail, fail, {index: 3}, fail},
			wantSleeps: []time.Duration{99 * ms, 199 * ms, 99 * ms},
		},
		{
			name:       "no sleep between successful reads",
			steps:      []step{{index: 1}, {index: 2, took: blocked}, {index: 3, took: 10 * ms}},
			wantSleeps: nil,
		},
		{
			name:       "an unchanged index returned at once is slowed down like an error",
			steps:      []step{{index: 4}, {index: 4}, {index: 4}, {index: 5, took: blocked}, {index: 5}},
			wantSleeps: []time.Duration{99 * ms, 199 * ms, 99 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, sleeps := scriptedWatch(t, tt.steps)
			for i := range sleeps {
				sleeps[i] = sleeps[i].Truncate(ms)
			}
			if !slices.Equal(sleeps, tt.wantSleeps) {
				t.Errorf("sleeps = %v, want %v", sleeps, tt.wantSleeps)
			}
		})
	}
}

func TestBackoff_Jitter(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	if d := b.next(func() float64 { return 0 }); d != 50*time.Millisecond {
		t.Errorf("lowest jitter = %s, want half the delay (50ms)", d)
	}
	if d := b.next(func() float64 { return 0.5 }); d != 150*time.Millisecond {
		t.Errorf("mid jitter on the second delay = %s, want 150ms", d)
	}
}

func TestWatch_StopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, func(ctx context.Context, waitIndex uint64) (uint64, error) {
			calls++
			if calls == 2 {
				cancel()
				<-ctx.Done() // a blocking read aborted by the cancel
				return 0, ctx.Err()
			}
			return uint64(calls), nil
		}, nil)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after its context was cancelled")
	}
	if calls != 2 {
		t.Errorf("fetch called %d times, want 2", calls)
	}
}

func TestNextIndex(t *testing.T) {
	tests := []struct {
		name            string
		prev, got, want uint64
	}{
		{"forward", 5, 9, 9},
		{"unchanged", 5, 5, 5},
		{"backwards resets", 9, 5, 0},
		{"zero becomes one", 0, 0, 1},
		{"first read", 0, 42, 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextIndex(tt.prev, tt.got); got != tt.want {
				t.Errorf("nextIndex(%d, %d) = %d, want %d", tt.prev, tt.got, got, tt.want)
			}
		})
	}
}
