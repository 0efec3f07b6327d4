package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// SuperviseOptions configures Supervise. Zero values take the documented defaults.
type SuperviseOptions struct {
	// StopSignal is sent to main's process group to stop it. Optional, defaults to SIGTERM.
	StopSignal syscall.Signal
	// StopTimeout is how long main gets after StopSignal before its group gets SIGKILL.
	// Optional, defaults to 10s. Keep it below the container runtime's own stop timeout.
	StopTimeout time.Duration
	// PreStop runs on the first stop request, before StopSignal: fence, hand over, deregister.
	// Its ctx ends after PreStopTimeout, on a second stop request or when main exits, and it
	// must return then; an error is logged and the stop goes on. Optional.
	PreStop func(ctx context.Context) error
	// PreStopTimeout bounds PreStop. Optional, defaults to 10s.
	PreStopTimeout time.Duration
	// PostStop runs once main has exited (or failed to start), before Supervise returns.
	// Optional.
	PostStop func(ctx context.Context)
	// PostStopTimeout bounds PostStop. Optional, defaults to 10s.
	PostStopTimeout time.Duration
}

// hookGrace is how long a hook whose ctx has ended gets to return before Supervise goes on
// without it.
const hookGrace = time.Second

func (o SuperviseOptions) withDefaults() SuperviseOptions {
	if o.StopSignal == 0 {
		o.StopSignal = syscall.SIGTERM
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.PreStopTimeout <= 0 {
		o.PreStopTimeout = DefaultStopTimeout
	}
	if o.PostStopTimeout <= 0 {
		o.PostStopTimeout = DefaultStopTimeout
	}
	return o
}

// Supervise is the tini-like contract of `mysqlpilot supervise -- CMD ARGS`: it creates a
// Supervisor, runs main under it with s.Supervise, closes it and returns main's exit code.
func Supervise(ctx context.Context, log *slog.Logger, main Cmd, opts SuperviseOptions) int {
	s := New(log)
	code := s.Supervise(ctx, main, opts)
	if err := s.Close(); err != nil {
		s.log.Warn("supervisor: supervise", "err", err)
	}
	return code
}

// Supervise starts main and stays with it until it exits:
//   - SIGTERM, SIGINT and the end of ctx stop main as stopPhase describes: PreStop, then
//     StopSignal to main's group, then SIGKILL after StopTimeout;
//   - SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT are forwarded to main's group; SIGCHLD never is;
//   - every child and orphan is reaped meanwhile.
//
// When main exits, Supervise sends SIGTERM to what is left of main's group, runs PostStop and
// returns main's code, or 128+signal when a signal killed it, or 127/126 when it did not start.
// Main's standard streams are Cmd's: set them to os.Stdin, os.Stdout and os.Stderr to share ours.
func (s *Supervisor) Supervise(ctx context.Context, main Cmd, opts SuperviseOptions) int {
	opts = opts.withDefaults()
	// Subscribe before starting main so no early signal is lost, and independently of ctx so
	// that signals still escalate the stop after ctx has ended.
	sigCtx, unsubscribe := context.WithCancel(context.WithoutCancel(ctx))
	defer unsubscribe()
	sigs := Signals(sigCtx)

	p, err := s.Start(main)
	if err != nil {
		s.log.Error("supervisor: main did not start", "cmd", main.name(), "err", err)
		runPostStop(ctx, s.log, opts)
		return ExitCode(err)
	}
	s.log.Info("supervisor: main started", "cmd", p.Name(), "pid", p.Pid())
	l := &superviseLoop{log: s.log, opts: opts, main: p, killGroup: killGroup}
	return l.run(ctx, sigs)
}

// killGroup signals what is left of a process group whose leader has been reaped. Pids are
// allocated cyclically, so the group id cannot name a new group until the pid space wraps.
func killGroup(pgid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// mainProcess is what Supervise needs of main; *Process implements it, tests fake it.
type mainProcess interface {
	Pid() int
	Name() string
	Signal(sig syscall.Signal) error
	Done() <-chan struct{}
	Status() ExitStatus
}

// stopPhase is how far the stop sequence has gone. A stop request is SIGTERM or SIGINT; each
// one moves the sequence one step on, so an impatient operator can hurry it. The end of
// Supervise's ctx starts the sequence but never hurries it: an owner that cancels ctx on the very
// SIGTERM that Supervise also receives must not turn one request into two.
//
//	phase     | stop request               | ctx ends       | PreStop returns/times out | StopTimeout
//	----------+----------------------------+----------------+---------------------------+------------
//	running   | PreStop -> preStop, or     | as a stop      |                           |
//	          | StopSignal -> signalled    | request        |                           |
//	preStop   | cancel PreStop, StopSignal | -              | StopSignal -> signalled   |
//	          | -> signalled               |                |                           |
//	signalled | SIGKILL -> killed          | -              |                           | SIGKILL -> killed
//	killed    | nothing: wait for exit     | -              |                           |
//
// In every phase, SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT are forwarded to main's group, and when
// main exits: cancel PreStop if it runs, SIGTERM the rest of main's group, PostStop, return.
type stopPhase int

const (
	phaseRunning stopPhase = iota
	phasePreStop
	phaseSignalled
	phaseKilled
)

func (p stopPhase) String() string {
	switch p {
	case phaseRunning:
		return "running"
	case phasePreStop:
		return "pre-stop"
	case phaseSignalled:
		return "signalled"
	case phaseKilled:
		return "killed"
	}
	return fmt.Sprintf("stopPhase(%d)", int(p))
}

// superviseLoop is the state of one Supervise call. Only its run goroutine touches it.
type superviseLoop struct {
	log       *slog.Logger
	opts      SuperviseOptions
	main      mainProcess
	killGroup func(pgid int, sig syscall.Signal) error

	phase          stopPhase
	preStopDone    chan error      // receives PreStop's result; nil when none runs
	preStopExpired <-chan struct{} // PreStop's ctx ended; nil once handled
	preStopCancel  context.CancelFunc
	killTimer      *time.Timer
	killC          <-chan time.Time // StopTimeout after StopSignal; nil when not armed
}

// run is the event loop: one select, one handler per event.
func (l *superviseLoop) run(ctx context.Context, sigs <-chan syscall.Signal) int {
	ctxDone := ctx.Done()
	for {
		select {
		case sig, ok := <-sigs:
			if !ok {
				sigs = nil
				continue
			}
			l.onSignal(sig)
		case <-ctxDone:
			ctxDone = nil
			l.onContextDone()
		case err := <-l.preStopDone:
			l.onPreStopDone(err)
		case <-l.preStopExpired:
			l.onPreStopExpired()
		case <-l.killC:
			l.kill("stop timeout " + l.opts.StopTimeout.String() + " passed")
		case <-l.main.Done():
			return l.onMainExit(ctx)
		}
	}
}

func (l *superviseLoop) onSignal(sig syscall.Signal) {
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT:
		l.onStopRequest("received " + signalName(sig))
	default:
		l.log.Info("supervisor: forwarding signal", "signal", signalName(sig), "pid", l.main.Pid())
		l.signal(sig)
	}
}

// onStopRequest moves the stop sequence one step on; see stopPhase.
func (l *superviseLoop) onStopRequest(why string) {
	switch l.phase {
	case phaseRunning:
		if l.opts.PreStop != nil {
			l.startPreStop(why)
			return
		}
		l.sendStopSignal(why)
	case phasePreStop:
		l.preStopCancel()
		l.sendStopSignal(why + " during pre-stop")
	case phaseSignalled:
		l.kill(why + " while stopping")
	case phaseKilled:
		l.log.Info("supervisor: stop requested again; main already killed, waiting for it", "why", why)
	}
}

// onContextDone starts the stop sequence unless it has started already; see stopPhase.
func (l *superviseLoop) onContextDone() {
	if l.phase == phaseRunning {
		l.onStopRequest("context done")
	}
}

func (l *superviseLoop) startPreStop(why string) {
	l.phase = phasePreStop
	l.log.Info("supervisor: stopping: running pre-stop", "why", why, "timeout", l.opts.PreStopTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.PreStopTimeout)
	l.preStopCancel, l.preStopExpired = cancel, ctx.Done()
	done := make(chan error, 1)
	l.preStopDone = done
	go func() { done <- callHook(ctx, l.opts.PreStop) }()
}

func (l *superviseLoop) onPreStopDone(err error) {
	l.preStopDone = nil
	l.preStopCancel()
	if err != nil {
		l.log.Warn("supervisor: pre-stop failed; stopping anyway", "err", err)
	}
	if l.phase == phasePreStop {
		l.sendStopSignal("pre-stop done")
	}
}

func (l *superviseLoop) onPreStopExpired() {
	l.preStopExpired = nil
	if l.phase == phasePreStop {
		l.sendStopSignal("pre-stop timed out after " + l.opts.PreStopTimeout.String())
	}
}

func (l *superviseLoop) sendStopSignal(why string) {
	l.phase = phaseSignalled
	l.log.Info("supervisor: stopping: signalling main's group", "why", why,
		"signal", signalName(l.opts.StopSignal), "pid", l.main.Pid(), "kill_after", l.opts.StopTimeout)
	l.signal(l.opts.StopSignal)
	l.killTimer = time.NewTimer(l.opts.StopTimeout)
	l.killC = l.killTimer.C
}

func (l *superviseLoop) kill(why string) {
	l.phase = phaseKilled
	l.disarm()
	l.log.Warn("supervisor: stopping: killing main's group", "why", why, "pid", l.main.Pid())
	l.signal(syscall.SIGKILL)
}

func (l *superviseLoop) disarm() {
	if l.killTimer != nil {
		l.killTimer.Stop()
	}
	l.killC = nil
}

func (l *superviseLoop) signal(sig syscall.Signal) {
	if err := l.main.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		l.log.Error("supervisor: signal main", "err", err)
	}
}

func (l *superviseLoop) onMainExit(ctx context.Context) int {
	l.disarm()
	st := l.main.Status()
	l.log.Info("supervisor: main exited", "cmd", l.main.Name(), "pid", l.main.Pid(),
		"status", st.String(), "phase", l.phase.String())
	if l.preStopDone != nil {
		l.preStopCancel()
		l.waitPreStop()
	}
	if err := l.killGroup(l.main.Pid(), syscall.SIGTERM); err != nil {
		l.log.Error("supervisor: terminate the rest of main's group", "pid", l.main.Pid(), "err", err)
	}
	runPostStop(ctx, l.log, l.opts)
	return st.ExitCode()
}

// waitPreStop gives a cancelled PreStop hookGrace to return, so PostStop does not overlap it.
func (l *superviseLoop) waitPreStop() {
	t := time.NewTimer(hookGrace)
	defer t.Stop()
	select {
	case err := <-l.preStopDone:
		if err != nil {
			l.log.Warn("supervisor: pre-stop cut short by main's exit", "err", err)
		}
	case <-t.C:
		l.log.Warn("supervisor: pre-stop ignored its cancellation; going on without it")
	}
	l.preStopDone = nil
}

// runPostStop runs opts.PostStop, bounded by PostStopTimeout plus hookGrace.
func runPostStop(ctx context.Context, log *slog.Logger, opts SuperviseOptions) {
	if opts.PostStop == nil {
		return
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.PostStopTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- callHook(hctx, func(ctx context.Context) error { opts.PostStop(ctx); return nil })
	}()
	t := time.NewTimer(opts.PostStopTimeout + hookGrace)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			log.Error("supervisor: post-stop", "err", err)
		}
	case <-t.C:
		log.Error("supervisor: post-stop did not return in time; going on without it",
			"timeout", opts.PostStopTimeout)
	}
}

// callHook calls a hook and turns a panic into an error: PID 1 must outlive its hooks.
func callHook(ctx context.Context, hook func(ctx context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("hook panicked: %v", r)
		}
	}()
	return hook(ctx)
}
