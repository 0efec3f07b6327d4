// Package hooks is mysqlpilot's in-process hook runtime, in the manner of Containerbuddy's
// hooks but with Go functions instead of shell commands: a start hook, a health check on an
// interval, periodic tasks, reactions to Consul changes, and stop hooks.
//
// It knows nothing of MySQL or of HA decisions: the caller supplies the functions. It depends
// on Consul only through the small Watcher interface below.
package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults.
const (
	// DefaultHealthInterval is Health.Interval when unset (DESIGN.md section 4).
	DefaultHealthInterval = 2 * time.Second
	// DefaultStopTimeout is Hooks.StopTimeout when unset.
	DefaultStopTimeout = 30 * time.Second
)

// Hooks is a set of hooks run in this order by Run:
//
//  1. OnStart, to completion; if it fails, Run returns its error and nothing else runs.
//  2. Health, every Periodic and every OnChange, each in its own goroutine, until ctx ends.
//  3. PreStop, when ctx ends, while the loops of step 2 still run (so the health check keeps
//     reporting, and a session bound to it survives, during a graceful handover).
//  4. The loops stop, and Run waits for them.
//  5. PostStop.
//
// PreStop and PostStop each get a fresh context bounded by StopTimeout, since ctx has ended.
type Hooks struct {
	// OnStart prepares the node; health starts reporting only after it returns nil.
	// Optional, defaults to nothing.
	OnStart func(ctx context.Context) error

	// Health is the health check loop. Optional, defaults to none.
	Health *Health

	// Periodic tasks. Optional.
	Periodic []Periodic

	// OnChange reactions to Consul changes. Optional; they need Watcher.
	OnChange []OnChange

	// Watcher serves OnChange. Required when OnChange is set; a *consul.Client is one.
	Watcher Watcher

	// PreStop runs when the hooks are told to stop, before the loops stop. Optional.
	PreStop func(ctx context.Context) error

	// PostStop runs after the loops stopped. Optional.
	PostStop func(ctx context.Context) error

	// StopTimeout bounds PreStop and PostStop, each. Optional, defaults to 30s.
	StopTimeout time.Duration
}

// Run runs the hooks as described on Hooks, until ctx ends and the stop hooks have run. It
// returns OnStart's error, or the stop hooks' errors; the end of ctx itself is not an error.
// Errors of the loops are logged, not returned.
func (h Hooks) Run(ctx context.Context, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(h.OnChange) > 0 && h.Watcher == nil {
		return errors.New("hooks: onChange hooks need a Watcher")
	}
	if h.OnStart != nil {
		log.Info("hooks: onStart")
		if err := h.OnStart(ctx); err != nil {
			return fmt.Errorf("hooks: onStart: %w", err)
		}
	}

	// The loops outlive ctx until PreStop has run.
	loopCtx, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLoops()
	var wg sync.WaitGroup
	if h.Health != nil {
		wg.Go(func() { h.Health.Loop(loopCtx, log) })
	}
	for _, p := range h.Periodic {
		wg.Go(func() { p.Loop(loopCtx, log) })
	}
	for _, o := range h.OnChange {
		wg.Go(func() { o.Loop(loopCtx, h.Watcher, log) })
	}

	<-ctx.Done()
	timeout := h.StopTimeout
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	var errs []error
	if h.PreStop != nil {
		log.Info("hooks: preStop", "timeout", timeout)
		if err := runBounded(ctx, timeout, h.PreStop); err != nil {
			errs = append(errs, fmt.Errorf("hooks: preStop: %w", err))
		}
	}
	stopLoops()
	wg.Wait()
	if h.PostStop != nil {
		log.Info("hooks: postStop", "timeout", timeout)
		if err := runBounded(ctx, timeout, h.PostStop); err != nil {
			errs = append(errs, fmt.Errorf("hooks: postStop: %w", err))
		}
	}
	return errors.Join(errs...)
}

// runBounded runs fn with a context that keeps ctx's values, not its cancellation, and ends
// after timeout.
func runBounded(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	return fn(ctx)
}

// Health runs a check at once and then every Interval, and hands each result to OnResult.
type Health struct {
	// Interval between the starts of two checks. Optional, defaults to 2s.
	Interval time.Duration

	// Timeout bounds each check through its context. Optional, defaults to Interval.
	Timeout time.Duration

	// Check returns nil when healthy. Required. It must honour its context.
	Check func(ctx context.Context) error

	// OnResult receives every result, e.g. to feed a Consul TTL check (nil means passing).
	// Its context is the loop's. Optional, defaults to nothing (results are only logged when
	// health changes).
	OnResult func(ctx context.Context, err error)
}

// Loop runs the health loop until ctx ends. Checks never overlap: when one takes longer than
// Interval, the next starts as soon as it returns.
func (h Health) Loop(ctx context.Context, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	interval := h.Interval
	if interval <= 0 {
		interval = DefaultHealthInterval
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = interval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	first, healthy := true, false
	for {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := h.Check(cctx)
		cancel()
		if ctx.Err() != nil {
			return // a check cut short by the stop is not a result
		}
		switch {
		case err != nil && (healthy || first):
			log.Warn("hooks: health check failing", "err", err)
		case err == nil && (!healthy || first):
			log.Info("hooks: health check passing")
		}
		first, healthy = false, err == nil
		if h.OnResult != nil {
			h.OnResult(ctx, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Periodic runs a task every Interval. The first run is one Interval after the start.
type Periodic struct {
	// Name is used in logs. Required.
	Name string

	// Interval between the starts of two runs, without jitter. Required.
	Interval time.Duration

	// Run is the task; an error is logged and the next run happens on schedule. Required.
	Run func(ctx context.Context) error
}

// Loop runs the task until ctx ends. Runs never overlap: a run that takes longer than Interval
// delays the next one, which then starts at once, and ticks missed meanwhile are dropped.
func (p Periodic) Loop(ctx context.Context, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("periodic", p.Name)
	if p.Interval <= 0 {
		log.Error("hooks: periodic task not started: interval must be positive", "interval", p.Interval)
		return
	}
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		err := p.Run(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("hooks: periodic task failed", "err", err, "took", time.Since(start))
		default:
			log.Debug("hooks: periodic task done", "took", time.Since(start))
		}
	}
}
