package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeMain stands in for main's process: it records every signal and dies of those in dieOn.
type fakeMain struct {
	dieOn map[syscall.Signal]bool

	sent chan syscall.Signal // every signal, in order
	done chan struct{}
	once sync.Once
	st   ExitStatus
}

func newFakeMain(dieOn ...syscall.Signal) *fakeMain {
	f := &fakeMain{dieOn: map[syscall.Signal]bool{}, sent: make(chan syscall.Signal, 100), done: make(chan struct{})}
	for _, sig := range dieOn {
		f.dieOn[sig] = true
	}
	return f
}

func (f *fakeMain) Pid() int              { return 4242 }
func (f *fakeMain) Name() string          { return "fake" }
func (f *fakeMain) Done() <-chan struct{} { return f.done }
func (f *fakeMain) Status() ExitStatus    { <-f.done; return f.st }

func (f *fakeMain) Signal(sig syscall.Signal) error {
	select {
	case <-f.done:
		return os.ErrProcessDone
	default:
	}
	f.sent <- sig
	if f.dieOn[sig] {
		f.exit(ExitStatus{Code: -1, Signal: sig})
	}
	return nil
}

func (f *fakeMain) exit(st ExitStatus) {
	f.once.Do(func() { f.st = st; close(f.done) })
}

// harness runs one superviseLoop over a fakeMain and records the hooks' order.
type harness struct {
	t      *testing.T
	main   *fakeMain
	sigs   chan syscall.Signal
	code   chan int
	cancel context.CancelFunc

	mu     sync.Mutex
	events []string // "pre-stop", "pre-stop cancelled", "post-stop", "group SIGTERM"
}

func runLoop(t *testing.T, main *fakeMain, opts SuperviseOptions) *harness {
	t.Helper()
	h := &harness{t: t, main: main, sigs: make(chan syscall.Signal, 10), code: make(chan int, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel = cancel
	if opts.PostStop == nil {
		opts.PostStop = func(context.Context) { h.record("post-stop") }
	}
	l := &superviseLoop{
		log:  slog.New(slog.DiscardHandler),
		opts: opts.withDefaults(),
		main: main,
		killGroup: func(pgid int, sig syscall.Signal) error {
			if pgid != main.Pid() {
				t.Errorf("killGroup(%d), want main's pid %d", pgid, main.Pid())
			}
			h.record("group " + signalName(sig))
			return nil
		},
	}
	go func() { h.code <- l.run(ctx, h.sigs) }()
	return h
}

func (h *harness) record(e string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
}

// expectSent waits for main to receive want next.
func (h *harness) expectSent(want syscall.Signal) {
	h.t.Helper()
	select {
	case got := <-h.main.sent:
		if got != want {
			h.t.Fatalf("main received %s, want %s", signalName(got), signalName(want))
		}
	case <-time.After(10 * time.Second):
		h.t.Fatalf("main did not receive %s", signalName(want))
	}
}

// finish waits for the loop's result and checks that nothing else reached main.
func (h *harness) finish(wantCode int, wantEvents ...string) {
	h.t.Helper()
	select {
	case code := <-h.code:
		if code != wantCode {
			h.t.Errorf("exit code %d, want %d", code, wantCode)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatal("supervise did not return")
	}
	select {
	case sig := <-h.main.sent:
		h.t.Errorf("main also received %s", signalName(sig))
	default:
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.Equal(h.events, wantEvents) {
		h.t.Errorf("events %q, want %q", h.events, wantEvents)
	}
}

func TestSuperviseStopWithoutPreStopSendsStopSignal(t *testing.T) {
	h := runLoop(t, newFakeMain(syscall.SIGTERM), SuperviseOptions{})
	h.sigs <- syscall.SIGTERM
	h.expectSent(syscall.SIGTERM)
	h.finish(128+int(syscall.SIGTERM), "group SIGTERM", "post-stop")
}

func TestSuperviseSIGINTSendsTheConfiguredStopSignal(t *testing.T) {
	h := runLoop(t, newFakeMain(syscall.SIGQUIT), SuperviseOptions{StopSignal: syscall.SIGQUIT})
	h.sigs <- syscall.SIGINT
	h.expectSent(syscall.SIGQUIT)
	h.finish(128+int(syscall.SIGQUIT), "group SIGTERM", "post-stop")
}

func TestSuperviseStopTimeoutEscalatesToSIGKILL(t *testing.T) {
	h := runLoop(t, newFakeMain(syscall.SIGKILL), SuperviseOptions{StopTimeout: 20 * time.Millisecond})
	h.sigs <- syscall.SIGTERM
	h.expectSent(syscall.SIGTERM)
	h.expectSent(syscall.SIGKILL)
	h.finish(137, "group SIGTERM", "post-stop")
}

func TestSuperviseSecondStopRequestKillsAtOnce(t *testing.T) {
	h := runLoop(t, newFakeMain(syscall.SIGKILL), SuperviseOptions{StopTimeout: time.Hour})
	h.sigs <- syscall.SIGTERM
	h.expectSent(syscall.SIGTERM)
	h.sigs <- syscall.SIGINT
	h.expectSent(syscall.SIGKILL)
	h.finish(137, "group SIGTERM", "post-stop")
}

func TestSuperviseContextEndIsAStopRequest(t *testing.T) {
	h := runLoop(t, newFakeMain(syscall.SIGTERM), SuperviseOptions{})
	h.cancel()
	h.expectSent(syscall.SIGTERM)
	h.finish(143, "group SIGTERM", "post-stop")
}

func TestSuperviseContextEndDuringAStopDoesNotHurryIt(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var h *harness
	h = runLoop(t, newFakeMain(syscall.SIGTERM), SuperviseOptions{PreStop: func(ctx context.Context) error {
		close(started)
		select {
		case <-ctx.Done():
			h.record("pre-stop cancelled")
		case <-release:
			h.record("pre-stop done")
		}
		return nil
	}})
	h.sigs <- syscall.SIGTERM // the owner cancels ctx on the same SIGTERM
	waitClosed(t, started, "pre-stop start")
	h.cancel()
	select {
	case sig := <-h.main.sent:
		t.Fatalf("ctx end hurried the stop: main received %s during pre-stop", signalName(sig))
	case <-time.After(50 * time.Millisecond): // a negative check: nothing must happen in this window
	}
	close(release)
	h.expectSent(syscall.SIGTERM)
	h.finish(143, "pre-stop done", "group SIGTERM", "post-stop")
}

func TestSuperviseForwardsOtherSignalsAndReturnsMainsCode(t *testing.T) {
	main := newFakeMain()
	h := runLoop(t, main, SuperviseOptions{})
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT} {
		h.sigs <- sig
		h.expectSent(sig)
	}
	main.exit(ExitStatus{Code: 3})
	h.finish(3, "group SIGTERM", "post-stop")
}

func TestSupervisePreStopRunsBeforeStopSignal(t *testing.T) {
	main := newFakeMain(syscall.SIGTERM)
	var h *harness
	h = runLoop(t, main, SuperviseOptions{PreStop: func(ctx context.Context) error {
		h.record("pre-stop")
		if len(main.sent) != 0 {
			t.Error("main was signalled before pre-stop finished")
		}
		return nil
	}})
	h.sigs <- syscall.SIGTERM
	h.expectSent(syscall.SIGTERM)
	h.finish(143, "pre-stop", "group SIGTERM", "post-stop")
}

func TestSuperviseSecondStopRequestCancelsPreStop(t *testing.T) {
	started := make(chan struct{})
	var h *harness
	h = runLoop(t, newFakeMain(syscall.SIGTERM), SuperviseOptions{PreStop: func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		h.record("pre-stop cancelled")
		return ctx.Err()
	}})
	h.sigs <- syscall.SIGTERM
	waitClosed(t, started, "pre-stop start")
	h.sigs <- syscall.SIGTERM
	h.expectSent(syscall.SIGTERM)
	h.finish(143, "pre-stop cancelled", "group SIGTERM", "post-stop")
}

func TestSupervisePreStopTimeoutGoesOnToStopSignal(t *testing.T) {
	release := make(chan struct{})
	h := runLoop(t, newFakeMain(syscall.SIGTERM), SuperviseOptions{
		PreStopTimeout: 20 * time.Millisecond,
		PreStop: func(context.Context) error {
			<-release // ignores its ctx, as a careless hook would
			return nil
		},
	})
	h.sigs <- syscall.SIGTERM
	h.expectSent(syscall.SIGTERM)
	close(release)
	h.finish(143, "group SIGTERM", "post-stop")
}

func TestSuperviseFailingOrPanickingPreStopDoesNotBlockTheStop(t *testing.T) {
	for name, preStop := range map[string]func(context.Context) error{
		"error": func(context.Context) error { return errors.New("consul unreachable") },
		"panic": func(context.Context) error { panic("bug in hook") },
	} {
		t.Run(name, func(t *testing.T) {
			h := runLoop(t, newFakeMain(syscall.SIGTERM), SuperviseOptions{PreStop: preStop})
			h.sigs <- syscall.SIGTERM
			h.expectSent(syscall.SIGTERM)
			h.finish(143, "group SIGTERM", "post-stop")
		})
	}
}

func TestSuperviseMainExitDuringPreStopCancelsItBeforePostStop(t *testing.T) {
	main := newFakeMain()
	started := make(chan struct{})
	var h *harness
	h = runLoop(t, main, SuperviseOptions{PreStop: func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		h.record("pre-stop cancelled")
		return nil
	}})
	h.sigs <- syscall.SIGTERM
	waitClosed(t, started, "pre-stop start")
	main.exit(ExitStatus{Code: 0})
	h.finish(0, "pre-stop cancelled", "group SIGTERM", "post-stop")
}

func TestSuperviseOptionsDefaults(t *testing.T) {
	o := SuperviseOptions{}.withDefaults()
	if o.StopSignal != syscall.SIGTERM || o.StopTimeout != DefaultStopTimeout ||
		o.PreStopTimeout != DefaultStopTimeout || o.PostStopTimeout != DefaultStopTimeout {
		t.Errorf("withDefaults() = %+v", o)
	}
}
