package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// RestartPolicy says when a job's command is started again after it exits.
type RestartPolicy string

// Restart policies. The empty policy means RestartNever.
const (
	RestartNever     RestartPolicy = "never"      // run once
	RestartOnFailure RestartPolicy = "on-failure" // restart after a non-zero exit or a failed start; stop after success
	RestartAlways    RestartPolicy = "always"     // restart after any exit
)

// Validate reports an unknown policy.
func (p RestartPolicy) Validate() error {
	switch p {
	case "", RestartNever, RestartOnFailure, RestartAlways:
		return nil
	}
	return fmt.Errorf("unknown restart policy %q (want never, on-failure or always)", string(p))
}

// restarts decides whether a run that ended with err (nil for exit 0) is followed by another.
func (p RestartPolicy) restarts(err error) bool {
	switch p {
	case RestartAlways:
		return true
	case RestartOnFailure:
		return err != nil
	default:
		return false
	}
}

// Job is a long-running extra process, such as a local Consul agent, kept alive per its policy.
type Job struct {
	Name            string         // for logs and Stats; optional, defaults to Cmd's name
	Cmd             Cmd            // what to run
	Restart         RestartPolicy  // optional, defaults to RestartNever
	RestartDelay    time.Duration  // first delay before a restart; optional, defaults to 1s
	MaxRestartDelay time.Duration  // the delay doubles per quick failure up to this; optional, defaults to 1m
	StopSignal      syscall.Signal // sent to the job's group when ctx ends; optional, defaults to SIGTERM
	StopTimeout     time.Duration  // between StopSignal and SIGKILL; optional, defaults to 10s
}

// Job defaults.
const (
	DefaultRestartDelay    = time.Second
	DefaultMaxRestartDelay = time.Minute
	DefaultStopTimeout     = 10 * time.Second
)

// withDefaults validates j and fills in its defaults.
func (j Job) withDefaults() (Job, error) {
	if j.Name == "" {
		j.Name = j.Cmd.name()
	}
	if err := j.Restart.Validate(); err != nil {
		return j, fmt.Errorf("supervisor: job %s: %w", j.Name, err)
	}
	if j.Restart == "" {
		j.Restart = RestartNever
	}
	if j.RestartDelay <= 0 {
		j.RestartDelay = DefaultRestartDelay
	}
	if j.MaxRestartDelay <= 0 {
		j.MaxRestartDelay = DefaultMaxRestartDelay
	}
	j.MaxRestartDelay = max(j.MaxRestartDelay, j.RestartDelay)
	if j.StopSignal == 0 {
		j.StopSignal = syscall.SIGTERM
	}
	if j.StopTimeout <= 0 {
		j.StopTimeout = DefaultStopTimeout
	}
	return j, nil
}

// backoff computes restart delays: base after a run that lasted at least max (it was stable),
// otherwise double the previous delay, capped at max.
type backoff struct {
	base, max time.Duration
	last      time.Duration
}

func (b *backoff) next(ranFor time.Duration) time.Duration {
	if b.last == 0 || ranFor >= b.max {
		b.last = b.base
	} else {
		b.last = min(2*b.last, b.max)
	}
	return b.last
}

// RunJob runs j's command and restarts it per j.Restart until the policy says stop or ctx ends.
// When ctx ends it stops the command (StopSignal, then SIGKILL after StopTimeout) and returns
// nil: a requested stop is not a failure. When the policy ends the job, it returns the last
// run's error: nil after exit 0, else an *ExitError or a *StartError, wrapped.
func (s *Supervisor) RunJob(ctx context.Context, j Job) error {
	j, err := j.withDefaults()
	if err != nil {
		return err
	}
	bo := backoff{base: j.RestartDelay, max: j.MaxRestartDelay}
	for {
		began := time.Now()
		err := s.runJobOnce(ctx, j)
		if ctx.Err() != nil {
			return nil
		}
		if !j.Restart.restarts(err) {
			if err != nil {
				return fmt.Errorf("supervisor: job %s: %w", j.Name, err)
			}
			s.log.Info("supervisor: job finished", "job", j.Name)
			return nil
		}
		delay := bo.next(time.Since(began))
		s.stats.job(j.Name, func(js *JobStats) { js.Restarts++ })
		s.log.Warn("supervisor: job ended, restarting", "job", j.Name, "policy", string(j.Restart),
			"err", err, "delay", delay)
		if !sleepCtx(ctx, delay) {
			return nil
		}
	}
}

// runJobOnce runs j's command once; when ctx ends it stops the command and waits for it.
func (s *Supervisor) runJobOnce(ctx context.Context, j Job) error {
	c := j.Cmd
	var tail *tailBuffer
	if c.Stderr == nil {
		tail = &tailBuffer{}
		c.Stderr = tail
	}
	p, err := s.Start(c)
	s.stats.job(j.Name, func(js *JobStats) {
		js.Starts++
		js.Running = err == nil
	})
	if err != nil {
		return err
	}
	s.log.Info("supervisor: job started", "job", j.Name, "pid", p.Pid())
	select {
	case <-p.Done():
	case <-ctx.Done():
		s.log.Info("supervisor: stopping job", "job", j.Name, "pid", p.Pid(), "signal", signalName(j.StopSignal))
		p.Stop(context.Background(), j.StopSignal, j.StopTimeout)
	}
	st := p.Status()
	s.stats.job(j.Name, func(js *JobStats) {
		js.Running = false
		js.LastExit = st
	})
	s.log.Info("supervisor: job exited", "job", j.Name, "pid", p.Pid(), "status", st.String())
	return p.result(tail, nil)
}

// RunJobs runs every job concurrently with RunJob and waits for all of them. It returns the
// jobs' errors joined.
func (s *Supervisor) RunJobs(ctx context.Context, jobs ...Job) error {
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() { errs[i] = s.RunJob(ctx, j) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sleepCtx waits for d or ctx, and reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
