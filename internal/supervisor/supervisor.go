package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("supervisor closed")

// reaping is set while a Supervisor exists. It is the package's one piece of mutable state, and
// it mirrors the kernel's: wait4(-1) is process-wide, so a second reaper would steal the first
// one's exit statuses. New refuses to create a second one rather than lose statuses silently.
var reaping atomic.Bool

// Supervisor starts child processes and is the only reaper of this process's children.
// Its methods are safe for concurrent use.
type Supervisor struct {
	log *slog.Logger

	// mu is held across fork+register in Start and around every wait4 in the reaper, so a child
	// that exits at once is never reaped before its pid is registered, and around every kill in
	// Signal, so a signal never reaches a pid that was reaped (and could have been reused).
	mu     sync.Mutex
	procs  map[int]*Process // started and not yet reaped, by pid
	closed bool

	sigchld    chan os.Signal
	quit       chan struct{}
	reaperDone chan struct{}
	subreaper  bool // we set PR_SET_CHILD_SUBREAPER and clear it on Close

	stats stats

	environ []string // children's environment when Cmd.Env is nil (SetEnviron); nil: ours
}

// New starts the reaper and returns a Supervisor. When this process is not PID 1 it registers as
// a child subreaper, so orphaned descendants are reparented to it and reaped. A nil log discards.
// New panics if another Supervisor in this process has not been closed: two reapers would lose
// each other's exit statuses.
func New(log *slog.Logger) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !reaping.CompareAndSwap(false, true) {
		panic("supervisor: New: another Supervisor already reaps this process's children")
	}
	s := &Supervisor{
		log:        log,
		procs:      make(map[int]*Process),
		sigchld:    make(chan os.Signal, 1),
		quit:       make(chan struct{}),
		reaperDone: make(chan struct{}),
		stats:      newStats(),
	}
	signal.Notify(s.sigchld, syscall.SIGCHLD)
	s.subreaper = s.becomeSubreaper()
	go s.reaper()
	return s
}

// becomeSubreaper asks the kernel to reparent orphaned descendants to us. PID 1 gets them anyway.
func (s *Supervisor) becomeSubreaper() bool {
	if os.Getpid() == 1 {
		return false
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		s.log.Warn("supervisor: cannot become child subreaper; orphans will go to init", "err", err)
		return false
	}
	return true
}

// Close stops the reaper and gives up the child-subreaper role. Children still running are no
// longer reaped and their Done never closes: call Close after they are done. Close reports them.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	left := len(s.procs)
	s.mu.Unlock()

	close(s.quit)
	<-s.reaperDone
	signal.Stop(s.sigchld)
	if s.subreaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); err != nil {
			s.log.Warn("supervisor: clear child subreaper", "err", err)
		}
	}
	reaping.Store(false)
	if left > 0 {
		return fmt.Errorf("supervisor: close: %d children still running, no longer reaped", left)
	}
	return nil
}

// reaper is the only goroutine that waits for children. It drains every exited child, then
// sleeps until the next SIGCHLD. SIGCHLDs coalesce, which is why each wake-up drains them all.
func (s *Supervisor) reaper() {
	defer close(s.reaperDone)
	for {
		for s.reapOne() {
		}
		select {
		case <-s.sigchld:
		case <-s.quit:
			return
		}
	}
}

// reapOne reaps one exited child, if any, and hands its status to its Process. It reports
// whether it reaped one.
func (s *Supervisor) reapOne() bool {
	pid, ws, p, err := s.wait()
	if err != nil {
		if !errors.Is(err, syscall.ECHILD) {
			s.log.Error("supervisor: wait4", "err", err)
		}
		return false
	}
	if pid == 0 {
		return false
	}
	status := StatusFromWait(ws)
	if p == nil {
		s.stats.orphanReaped()
		s.log.Debug("supervisor: reaped orphan", "pid", pid, "status", status.String())
		return true
	}
	s.stats.exited(p.name, status)
	s.log.Debug("supervisor: reaped", "cmd", p.name, "pid", pid, "status", status.String())
	p.exit(status)
	return true
}

// wait calls wait4(-1, WNOHANG) under mu and unregisters the pid it returns, so that Start's
// registration and Signal's kill are atomic with respect to reaping.
func (s *Supervisor) wait() (int, syscall.WaitStatus, *Process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ws syscall.WaitStatus
	for {
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return 0, ws, nil, err
		}
		p := s.procs[pid]
		if p != nil {
			delete(s.procs, pid)
			p.reaped = true
		}
		return pid, ws, p, nil
	}
}

// forkExec forks and execs with mu held and registers the child before releasing it: the
// reaper, which needs mu to wait, can only see the child's exit after it is registered.
func (s *Supervisor) forkExec(p *Process, path string, argv []string, attr *syscall.ProcAttr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return err
	}
	p.pid = pid
	s.procs[pid] = p
	return nil
}

// signal sends sig to p's process group, or to p alone when it has left its group, unless p
// has been reaped: after that its pid may belong to another process.
func (s *Supervisor) signal(p *Process, sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.reaped {
		return os.ErrProcessDone
	}
	err := syscall.Kill(-p.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		err = syscall.Kill(p.pid, sig)
	}
	return err
}

// Stats returns a snapshot of the counters, for the metrics endpoint.
func (s *Supervisor) Stats() Stats {
	st := s.stats.snapshot()
	s.mu.Lock()
	st.Running = len(s.procs)
	s.mu.Unlock()
	return st
}
