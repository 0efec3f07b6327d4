package consul

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Watch backoff bounds, and the shortest round trip of a successful fetch that returned an
// unchanged index before it counts as a misbehaving endpoint (see Watch).
const (
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = 5 * time.Second
	watchTooFast    = 50 * time.Millisecond
)

// FetchFunc performs one (blocking) read. waitIndex is 0 for the first read, which must not
// block, and the last index otherwise. It returns the index the read observed.
type FetchFunc func(ctx context.Context, waitIndex uint64) (newIndex uint64, err error)

// Watch calls fetch in a loop until ctx ends, following Consul's rules for blocking queries:
//   - the first read uses index 0 (no blocking); each later read blocks on the last index;
//   - an index that goes backwards (a snapshot restore, a new dev agent) is reset to 0, so the
//     next read is a fresh, non-blocking one;
//   - an index of 0 is never used to block after a read: it becomes 1;
//   - errors are retried with exponential backoff and jitter, from 100ms up to 5s, and the
//     index is kept; so is a read that returns at once with an unchanged index (a misbehaving
//     endpoint would otherwise make this a busy loop).
//
// fetch decides what a change is and reports it (see WatchPrefix); Watch only keeps the index.
// log receives retries and recoveries.
func Watch(ctx context.Context, fetch FetchFunc, log *slog.Logger) {
	w := watcher{
		fetch: fetch,
		log:   log,
		now:   time.Now,
		sleep: sleepCtx,
		rand:  rand.Float64,
	}
	w.run(ctx)
}

// watcher is Watch with its clock, sleep and randomness injectable for tests.
type watcher struct {
	fetch FetchFunc
	log   *slog.Logger
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) bool
	rand  func() float64
}

func (w *watcher) run(ctx context.Context) {
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	b := backoff{min: watchMinBackoff, max: watchMaxBackoff}
	var index uint64
	failures := 0
	for ctx.Err() == nil {
		start := w.now()
		got, err := w.fetch(ctx, index)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			// Start over after a failure: the agent may have restarted with a smaller index,
			// and a blocking query on an index from its previous life would wait out maxWait
			// before reporting anything.
			index = 0
			d := b.next(w.rand)
			w.log.Warn("watch: read failed, retrying", "err", err, "failures", failures, "retry_in", d)
			if !w.sleep(ctx, d) {
				return
			}
			continue
		}
		if failures > 0 {
			w.log.Info("watch: read recovered", "failures", failures)
			failures = 0
		}
		next := nextIndex(index, got)
		if index != 0 && next == index && w.now().Sub(start) < watchTooFast {
			d := b.next(w.rand)
			w.log.Debug("watch: index unchanged on an immediate return, slowing down", "index", index, "retry_in", d)
			if !w.sleep(ctx, d) {
				return
			}
		} else {
			b.reset()
		}
		if next < index {
			w.log.Info("watch: index went backwards, starting over", "was", index, "now", got)
		}
		index = next
	}
}

// nextIndex applies Consul's index rules to the index a read returned.
func nextIndex(prev, got uint64) uint64 {
	switch {
	case got < prev:
		return 0
	case got == 0:
		return 1
	}
	return got
}

// WatchPrefix calls onChange with every key under prefix after the first read and whenever
// the prefix's index changes, until ctx ends. A change reaches onChange within one round trip.
// onChange runs in the watch goroutine: while it runs, changes are coalesced.
func (c *Client) WatchPrefix(ctx context.Context, prefix string, onChange func([]KV)) {
	Watch(ctx, func(ctx context.Context, waitIndex uint64) (uint64, error) {
		kvs, index, err := c.ListBlocking(ctx, prefix, waitIndex, DefaultWatchWait)
		if err != nil {
			return 0, err
		}
		if waitIndex == 0 || index != waitIndex {
			onChange(kvs)
		}
		return index, nil
	}, c.log.With("watch", "prefix "+prefix))
}
