// Package lab holds what `make bench` (test/bench) and `make soak` (test/soak) share: a
// testing.TB for running test/harness outside `go test`, a per-node writer that records every
// acknowledged write, fault injection on a node, and facts about the machine.
package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// TB is enough of testing.TB for test/harness outside `go test`. testing.TB cannot be
// implemented outside package testing (it has an unexported method), so the interface is
// embedded (nil) and every method the harness calls is implemented here; a call to any other
// method would panic, which is what we want to hear about.
//
// Fatal and FailNow panic with a *Failure that Run recovers: they are only ever called from the
// goroutine that runs the scenario (the harness's helpers are synchronous).
type TB struct {
	testing.TB
	name string
	base string
	log  io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	errs     []string
	ndir     int
}

// Failure is what a Fatal call panics with.
type Failure struct{ Msg string }

func (f *Failure) Error() string { return f.Msg }

// NewTB makes a TB whose temporary directories live under a fresh directory in /tmp (short
// paths: unix socket paths are limited to 107 bytes) and whose log goes to w.
func NewTB(name string, w io.Writer) *TB {
	base, err := os.MkdirTemp("", "mpbench-")
	if err != nil {
		panic(err)
	}
	return &TB{name: name, base: base, log: w}
}

// Run calls f with a fresh TB named name, runs its cleanups afterwards (last registered
// first, as package testing does) and returns the failure, if any.
func Run(name string, w io.Writer, f func(t *TB)) (err error) {
	t := NewTB(name, w)
	defer func() {
		if r := recover(); r != nil {
			if fl, ok := r.(*Failure); ok {
				err = fl
			} else {
				err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}
		t.RunCleanups()
		if err == nil && t.Failed() {
			err = errors.New(t.Errors())
		}
	}()
	f(t)
	return nil
}

// RunCleanups runs the registered cleanups, newest first, and removes the temp directories.
func (t *TB) RunCleanups() {
	for {
		t.mu.Lock()
		if len(t.cleanups) == 0 {
			t.mu.Unlock()
			break
		}
		f := t.cleanups[len(t.cleanups)-1]
		t.cleanups = t.cleanups[:len(t.cleanups)-1]
		t.mu.Unlock()
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Logf("cleanup: %v", r)
				}
			}()
			f()
		}()
	}
	_ = os.RemoveAll(t.base)
}

func (t *TB) Name() string { return t.name }
func (t *TB) Helper()      {}

func (t *TB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *TB) TempDir() string {
	t.mu.Lock()
	t.ndir++
	n := t.ndir
	t.mu.Unlock()
	d := filepath.Join(t.base, fmt.Sprintf("%03d", n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func (t *TB) Log(args ...any) { t.Logf("%s", fmt.Sprint(args...)) }
func (t *TB) Logf(format string, args ...any) {
	if t.log != nil {
		fmt.Fprintf(t.log, "%s %s: %s\n", time.Now().Format("15:04:05.000"), t.name, fmt.Sprintf(format, args...))
	}
}

func (t *TB) Fail() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
}

func (t *TB) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *TB) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }
func (t *TB) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.Logf("ERROR: %s", msg)
	t.mu.Lock()
	t.failed = true
	t.errs = append(t.errs, msg)
	t.mu.Unlock()
}

// Errors joins the messages of Error and Errorf calls.
func (t *TB) Errors() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := ""
	for i, e := range t.errs {
		if i > 0 {
			s += "; "
		}
		s += e
	}
	return s
}

func (t *TB) FailNow() { t.Fatal("FailNow") }
func (t *TB) Fatal(args ...any) {
	t.Fatalf("%s", fmt.Sprint(args...))
}
func (t *TB) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.Logf("FATAL: %s", msg)
	t.Fail()
	panic(&Failure{Msg: msg})
}

// Try runs f and turns a Fatal inside it into an error, so a scenario can recover from a
// harness helper that gave up (say, a wait that timed out). The TB's failed state is left as
// it was before.
func (t *TB) Try(f func()) (err error) {
	was := t.Failed()
	defer func() {
		if r := recover(); r != nil {
			fl, ok := r.(*Failure)
			if !ok {
				panic(r)
			}
			t.mu.Lock()
			t.failed = was
			t.mu.Unlock()
			err = fl
		}
	}()
	f()
	return nil
}

// LongFlags lets pflag take Go-style single-dash long flags (-runs 3, -quick) as well as
// --runs 3: every "-name..." argument with a name longer than one letter gets a second dash.
func LongFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name := a[1:]
			if j := strings.IndexByte(name, '='); j >= 0 {
				name = name[:j]
			}
			if len(name) > 1 {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}
