package supervisor

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newTestProcess is a Process with no child behind it, to drive the copy loops by hand.
func newTestProcess() *Process {
	return &Process{
		log: slog.New(slog.DiscardHandler), name: "t", outputIdle: 20 * time.Millisecond,
		exited: make(chan struct{}), done: make(chan struct{}),
	}
}

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not done after 10s", what)
	}
}

func TestOutputWrittenAfterExitIsStillCopied(t *testing.T) {
	p := newTestProcess()
	r, w := pipe(t)
	var out bytes.Buffer
	pl := &plumbing{outs: []outCopy{{stream: "stdout", r: r, w: &out}}}
	p.startIO(pl)
	if _, err := w.WriteString("before exit\n"); err != nil {
		t.Fatal(err)
	}
	p.exit(ExitStatus{})
	if _, err := w.WriteString("after exit\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	waitClosed(t, p.Done(), "Done")
	if got, want := out.String(), "before exit\nafter exit\n"; got != want {
		t.Errorf("copied %q, want %q", got, want)
	}
}

func TestOutputHeldOpenByADescendantStopsAfterIdle(t *testing.T) {
	p := newTestProcess()
	r, w := pipe(t) // w stays open, as if a daemonized grandchild held it
	var out bytes.Buffer
	p.startIO(&plumbing{outs: []outCopy{{stream: "stdout", r: r, w: &out}}})
	if _, err := w.WriteString("partial"); err != nil {
		t.Fatal(err)
	}
	p.exit(ExitStatus{Code: 0})
	waitClosed(t, p.Done(), "Done with the pipe still open")
	if out.String() != "partial" {
		t.Errorf("copied %q, want %q", out.String(), "partial")
	}
	if err := p.IOError(); err != nil {
		t.Errorf("IOError() = %v, want nil: an idle descendant is not a copy failure", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("upload failed") }

func TestWriterFailureClosesThePipe(t *testing.T) {
	p := newTestProcess()
	r, w := pipe(t)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		p.copyOut(outCopy{stream: "stdout", r: r, w: failingWriter{}})
	}()
	if _, err := w.WriteString("data"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, copied, "copyOut")
	if _, err := w.WriteString("more"); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("child's next write: %v, want EPIPE rather than blocking on a pipe nobody reads", err)
	}
	if err := p.IOError(); err == nil || !strings.Contains(err.Error(), "copy stdout: upload failed") {
		t.Errorf("IOError() = %v, want it to name the stream and the cause", err)
	}
}

func TestStdinCopyEndsWhenTheProcessExits(t *testing.T) {
	p := newTestProcess()
	r, w := pipe(t)
	blocking, release := pipe(t) // a source that never ends by itself
	defer release.Close()
	pl := &plumbing{stdinW: w, stdinSrc: blocking}
	p.startIO(pl)
	p.exit(ExitStatus{})
	waitClosed(t, p.Done(), "Done while stdin's source blocks")
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("child's stdin read: %v, want EOF once the process exited", err)
	}
}
