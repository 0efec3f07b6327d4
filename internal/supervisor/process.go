package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// outputIdleAfterExit bounds how long a child's output pipes are drained after it exits while
// nothing more arrives. A descendant that inherited the pipe (a daemon, "cmd &") can keep it
// open forever; os/exec would wait for it, a supervisor must not.
const outputIdleAfterExit = 2 * time.Second

// Process is a child started by Start. Its status becomes known when Done is closed.
type Process struct {
	sup  *Supervisor
	log  *slog.Logger
	name string
	pid  int // set under sup.mu before the reaper can see the child

	outputIdle time.Duration // outputIdleAfterExit; shorter in tests

	reaped bool          // guarded by sup.mu: the pid is free and must not be signalled
	status ExitStatus    // written by the reaper before exited is closed
	exited chan struct{} // closed by the reaper
	done   chan struct{} // closed once exited and the output copies have finished

	ioMu  sync.Mutex
	ioErr error // first error copying the standard streams
}

// Pid returns the child's pid, which is also its process group id.
func (p *Process) Pid() int { return p.pid }

// Name returns the command's name.
func (p *Process) Name() string { return p.name }

// Done is closed when the child has been reaped and its output copied.
func (p *Process) Done() <-chan struct{} { return p.done }

// Status returns how the child ended, waiting for it to exit if it has not yet.
func (p *Process) Status() ExitStatus {
	<-p.exited
	return p.status
}

// IOError returns the first error met copying the child's standard streams to or from a
// non-file Reader or Writer, e.g. an upload that failed. It is valid only after Done is closed.
func (p *Process) IOError() error {
	p.ioMu.Lock()
	defer p.ioMu.Unlock()
	return p.ioErr
}

// Signal sends sig to the child's process group. After the child has been reaped it returns
// os.ErrProcessDone and sends nothing: its pid may already belong to someone else.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := p.sup.signal(p, sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return err
		}
		return fmt.Errorf("supervisor: signal %s (pid %d) with %s: %w", p.name, p.pid, signalName(sig), err)
	}
	return nil
}

// Stop sends sig to the child's process group and waits up to timeout for the child to exit;
// then, or as soon as ctx is done, it sends SIGKILL to the group. It returns the exit status
// once Done is closed.
func (p *Process) Stop(ctx context.Context, sig syscall.Signal, timeout time.Duration) ExitStatus {
	p.signalOrLog(sig)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.kill("did not stop in time", "signal", signalName(sig), "timeout", timeout)
	case <-ctx.Done():
		p.kill("stop cut short", "err", context.Cause(ctx))
	}
	<-p.done
	return p.status
}

// kill sends SIGKILL to the group unless the child has exited meanwhile.
func (p *Process) kill(why string, attrs ...any) {
	if p.hasExited() {
		return
	}
	p.log.Warn("supervisor: "+why+", killing its group", append([]any{"cmd", p.name, "pid", p.pid}, attrs...)...)
	p.signalOrLog(syscall.SIGKILL)
}

func (p *Process) signalOrLog(sig syscall.Signal) {
	if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.log.Error("supervisor: signal", "cmd", p.name, "pid", p.pid, "err", err)
	}
}

// exit is called once, by the reaper, with the child's status.
func (p *Process) exit(status ExitStatus) {
	p.status = status
	close(p.exited)
}

func (p *Process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *Process) ioFailed(err error) {
	p.ioMu.Lock()
	defer p.ioMu.Unlock()
	if p.ioErr == nil {
		p.ioErr = err
	}
}

// Start starts c in its own process group and returns at once. Stdin, Stdout and Stderr that
// are *os.File are passed to the child directly; other Readers and Writers are copied through
// pipes, and Done waits for those copies; nil means /dev/null. A failure to start returns a
// *StartError whose Code is 127 when the executable is missing and 126 otherwise.
func (s *Supervisor) Start(c Cmd) (*Process, error) {
	p, err := s.start(c)
	if err != nil {
		s.stats.startFailed()
		s.log.Debug("supervisor: start failed", "cmd", c.name(), "err", err)
		return nil, err
	}
	s.stats.started()
	s.log.Debug("supervisor: started", "cmd", p.name, "pid", p.pid)
	return p, nil
}

func (s *Supervisor) start(c Cmd) (*Process, error) {
	name := c.name()
	path, err := exec.LookPath(c.Path)
	if err != nil {
		return nil, &StartError{Name: name, Op: "lookup", Err: err}
	}
	if c.Dir != "" {
		if err := checkDir(c.Dir); err != nil {
			return nil, &StartError{Name: name, Op: "chdir", Err: err}
		}
	}
	pl, perr := newPlumbing(c)
	if perr != nil {
		return nil, &StartError{Name: name, Op: perr.op, Err: perr.err}
	}
	p := &Process{
		sup: s, log: s.log, name: name, outputIdle: outputIdleAfterExit,
		exited: make(chan struct{}), done: make(chan struct{}),
	}
	env := s.childEnv(c)
	attr := &syscall.ProcAttr{
		Dir:   c.Dir,
		Env:   env,
		Files: pl.fds(),
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	err = s.forkExec(p, path, append([]string{c.Path}, c.Args...), attr)
	runtime.KeepAlive(pl.child)
	pl.closeChildEnds()
	if err != nil {
		pl.closeParentEnds()
		if errors.Is(err, ErrClosed) {
			return nil, fmt.Errorf("supervisor: start %s: %w", name, ErrClosed)
		}
		return nil, &StartError{Name: name, Op: "exec", Err: &os.PathError{Op: "exec", Path: path, Err: err}}
	}
	p.startIO(pl)
	return p, nil
}

func checkDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return &os.PathError{Op: "chdir", Path: dir, Err: syscall.ENOTDIR}
	}
	return nil
}

// startIO starts the copy goroutines and the one that closes Done after the child exits and
// its output is drained.
func (p *Process) startIO(pl *plumbing) {
	var wg sync.WaitGroup
	for _, o := range pl.outs {
		wg.Go(func() { p.copyOut(o) })
	}
	if pl.stdinW != nil {
		go p.copyIn(pl.stdinW, pl.stdinSrc)
	}
	go func() {
		<-p.exited
		for _, o := range pl.outs {
			// Wake a Read blocked on a pipe that a descendant still holds open.
			_ = o.r.SetReadDeadline(time.Now().Add(p.outputIdle))
		}
		if pl.stdinW != nil {
			_ = pl.stdinW.Close() // the child is gone; stop feeding it
		}
		wg.Wait()
		close(p.done)
	}()
}

// copyOut copies one output pipe to its Writer until EOF. After the child exits, it stops once
// the pipe stays idle for outputIdle. If the Writer fails, it closes the pipe, so the
// child's next write fails (EPIPE) instead of blocking forever on a pipe nobody reads.
func (p *Process) copyOut(o outCopy) {
	defer o.r.Close()
	buf := make([]byte, 32<<10)
	for {
		if p.hasExited() {
			_ = o.r.SetReadDeadline(time.Now().Add(p.outputIdle))
		}
		n, err := o.r.Read(buf)
		if n > 0 {
			if _, werr := o.w.Write(buf[:n]); werr != nil {
				p.ioFailed(fmt.Errorf("supervisor: %s: copy %s: %w", p.name, o.stream, werr))
				return
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			p.log.Warn("supervisor: output still held open after exit, probably by a descendant; stopped copying",
				"cmd", p.name, "pid", p.pid, "stream", o.stream)
			return
		default:
			p.ioFailed(fmt.Errorf("supervisor: %s: read %s: %w", p.name, o.stream, err))
			return
		}
	}
}

// copyIn feeds src to the child's stdin and closes the pipe when src ends. An error after the
// child exited (EPIPE, or the pipe closed under us) is expected and ignored; Done does not wait
// for this copy, since src may block forever.
func (p *Process) copyIn(w *os.File, src io.Reader) {
	_, err := io.Copy(w, src)
	_ = w.Close()
	if err != nil && !p.hasExited() && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, os.ErrClosed) {
		p.ioFailed(fmt.Errorf("supervisor: %s: copy stdin: %w", p.name, err))
	}
}

// outCopy is one output pipe: the parent's read end and where its bytes go.
type outCopy struct {
	stream string // "stdout" or "stderr"
	r      *os.File
	w      io.Writer
}

// plumbing holds the files of one Start: the child's fds 0, 1, 2 and the parent's pipe ends.
type plumbing struct {
	child      [3]*os.File // become the child's stdin, stdout, stderr
	childEnds  []*os.File  // opened here for the child; closed once it is forked
	parentEnds []*os.File  // closed here only if the start fails
	outs       []outCopy
	stdinW     *os.File
	stdinSrc   io.Reader
}

// plumbingError names the step that failed.
type plumbingError struct {
	op  string
	err error
}

func newPlumbing(c Cmd) (*plumbing, *plumbingError) {
	pl := &plumbing{}
	var err *plumbingError
	if pl.child[0], err = pl.input(c.Stdin); err != nil {
		pl.closeChildEnds()
		pl.closeParentEnds()
		return nil, err
	}
	if pl.child[1], err = pl.output("stdout", c.Stdout); err != nil {
		pl.closeChildEnds()
		pl.closeParentEnds()
		return nil, err
	}
	if c.Stderr != nil && interfaceEqual(c.Stdout, c.Stderr) {
		pl.child[2] = pl.child[1] // one pipe keeps the order and never writes concurrently to one Writer
	} else if pl.child[2], err = pl.output("stderr", c.Stderr); err != nil {
		pl.closeChildEnds()
		pl.closeParentEnds()
		return nil, err
	}
	return pl, nil
}

func (pl *plumbing) input(r io.Reader) (*os.File, *plumbingError) {
	if f, ok := r.(*os.File); ok && f != nil {
		return f, nil
	}
	if r == nil || isNilFile(r) {
		return pl.devNull(os.O_RDONLY)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, &plumbingError{op: "pipe", err: err}
	}
	pl.childEnds = append(pl.childEnds, pr)
	pl.parentEnds = append(pl.parentEnds, pw)
	pl.stdinW, pl.stdinSrc = pw, r
	return pr, nil
}

func (pl *plumbing) output(stream string, w io.Writer) (*os.File, *plumbingError) {
	if f, ok := w.(*os.File); ok && f != nil {
		return f, nil
	}
	if w == nil || isNilFile(w) {
		return pl.devNull(os.O_WRONLY)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, &plumbingError{op: "pipe", err: err}
	}
	pl.childEnds = append(pl.childEnds, pw)
	pl.parentEnds = append(pl.parentEnds, pr)
	pl.outs = append(pl.outs, outCopy{stream: stream, r: pr, w: w})
	return pw, nil
}

func (pl *plumbing) devNull(flag int) (*os.File, *plumbingError) {
	f, err := os.OpenFile(os.DevNull, flag, 0)
	if err != nil {
		return nil, &plumbingError{op: "open " + os.DevNull, err: err}
	}
	pl.childEnds = append(pl.childEnds, f)
	return f, nil
}

// fds returns the child's descriptors. Fd puts a file in blocking mode, which is what a child
// expects; the Files must stay reachable until the fork (runtime.KeepAlive in start).
func (pl *plumbing) fds() []uintptr {
	fds := make([]uintptr, len(pl.child))
	for i, f := range pl.child {
		fds[i] = f.Fd()
	}
	return fds
}

func (pl *plumbing) closeChildEnds() {
	for _, f := range pl.childEnds {
		_ = f.Close()
	}
}

func (pl *plumbing) closeParentEnds() {
	for _, f := range pl.parentEnds {
		_ = f.Close()
	}
}

// isNilFile reports a typed nil *os.File inside an interface, which means "none" like nil.
func isNilFile(v any) bool {
	f, ok := v.(*os.File)
	return ok && f == nil
}

// interfaceEqual compares two interface values without panicking on uncomparable types.
func interfaceEqual(a, b any) (eq bool) {
	defer func() {
		if recover() != nil {
			eq = false
		}
	}()
	return a == b
}

// signalName is a signal's conventional name, e.g. "SIGTERM".
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return fmt.Sprintf("signal %d", int(sig))
}
