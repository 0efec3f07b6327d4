//go:build integration

package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRunExit3Returns3(t *testing.T) {
	t.Parallel()
	err := sup.Run(t.Context(), sh("echo why >&2; exit 3"))
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Run = %v, want an *ExitError", err)
	}
	if ee.Status != (ExitStatus{Code: 3}) || ExitCode(err) != 3 {
		t.Errorf("status %+v, code %d, want exit 3", ee.Status, ExitCode(err))
	}
	if ee.Stderr != "why" {
		t.Errorf("Stderr = %q, want the tail of stderr %q", ee.Stderr, "why")
	}
}

func TestRunSuccessReturnsNil(t *testing.T) {
	t.Parallel()
	if err := sup.Run(t.Context(), Cmd{Path: "true"}); err != nil {
		t.Errorf("Run(true) = %v", err)
	}
}

func TestKilledBySIGKILLIs137(t *testing.T) {
	t.Parallel()
	p, err := sup.Start(Cmd{Path: "sleep", Args: []string{"60"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := waitDone(t, p)
	if st.ExitCode() != 137 || st.Signal != syscall.SIGKILL {
		t.Errorf("status %v (code %d), want killed by SIGKILL (137)", st, st.ExitCode())
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after reaping = %v, want os.ErrProcessDone: the pid may be reused", err)
	}
}

func TestStartFailuresMapTo127And126(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		cmd  Cmd
		code int
		msg  string
	}{
		{"missing from PATH", Cmd{Path: "mysqlpilot-no-such-binary"}, 127, "executable not found (exit 127)"},
		{"missing absolute path", Cmd{Path: filepath.Join(dir, "absent")}, 127, "executable not found (exit 127)"},
		{"script whose interpreter is missing", Cmd{Path: write("badshebang", "#!/no/such/interpreter\n", 0o755)}, 127, "executable not found (exit 127)"},
		{"not executable", Cmd{Path: write("noexec", "#!/bin/sh\n", 0o644)}, 126, "cannot execute (exit 126)"},
		{"not a program", Cmd{Path: write("garbage", "\x00\x01\x02\x03garbage", 0o755)}, 126, "cannot execute (exit 126)"},
		{"missing working directory", Cmd{Path: "true", Dir: filepath.Join(dir, "nodir")}, 126, "chdir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sup.Stats().StartFailures
			err := sup.Run(t.Context(), tt.cmd)
			var se *StartError
			if !errors.As(err, &se) {
				t.Fatalf("Run = %v, want a *StartError", err)
			}
			if got := ExitCode(err); got != tt.code {
				t.Errorf("ExitCode = %d, want %d (%v)", got, tt.code, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want it to say %q", err, tt.msg)
			}
			if sup.Stats().StartFailures <= before {
				t.Error("StartFailures did not grow")
			}
		})
	}
}

func TestOrphanedGrandchildIsReaped(t *testing.T) {
	t.Parallel()
	before := sup.Stats().OrphansReaped
	p, out := startReading(t, sh("sleep 60 >/dev/null 2>&1 & echo $!; exit 0"))
	orphan := out.pid()
	if st := waitDone(t, p); !st.Success() {
		t.Fatalf("sh: %v", st)
	}
	// Its parent is gone: as PID 1 or child subreaper we are its parent now.
	if _, ppid, ok := procStat(orphan); !ok || ppid != os.Getpid() {
		t.Fatalf("orphan %d has ppid %d, want us (%d)", orphan, ppid, os.Getpid())
	}
	if err := syscall.Kill(orphan, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, orphan) // gone from /proc means reaped, not a zombie
	if got := sup.Stats().OrphansReaped; got <= before {
		t.Errorf("OrphansReaped = %d, want more than %d", got, before)
	}
}

func TestSIGTERMReachesTheWholeGroup(t *testing.T) {
	t.Parallel()
	p, out := startReading(t, sh("sleep 60 >/dev/null 2>&1 & echo $!; wait"))
	grandchild := out.pid()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := waitDone(t, p); st.ExitCode() != 143 {
		t.Errorf("sh: %v, want killed by SIGTERM (143)", st)
	}
	waitGone(t, grandchild)
}

func TestStopEscalatesToSIGKILLWhenTERMIsTrapped(t *testing.T) {
	t.Parallel()
	p, out := startReading(t, sh(`trap "" TERM; echo ready; exec sleep 60`))
	if got := out.line(); got != "ready" {
		t.Fatalf("got %q, want ready", got)
	}
	const timeout = 300 * time.Millisecond
	began := time.Now()
	st := p.Stop(t.Context(), syscall.SIGTERM, timeout)
	if st.ExitCode() != 137 {
		t.Errorf("Stop = %v, want killed by SIGKILL (137)", st)
	}
	if took := time.Since(began); took < timeout {
		t.Errorf("Stop took %v, want at least the %v grace", took, timeout)
	}
}

func TestStopReturnsEarlyWhenTheChildObeys(t *testing.T) {
	t.Parallel()
	p, err := sup.Start(Cmd{Path: "sleep", Args: []string{"60"}})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Stop(t.Context(), syscall.SIGTERM, time.Hour); st.ExitCode() != 143 {
		t.Errorf("Stop = %v, want killed by SIGTERM (143)", st)
	}
}

func TestRunPipesStream10MiBIntact(t *testing.T) {
	t.Parallel()
	in := make([]byte, 10<<20)
	rand.Read(in)
	var out, errOut bytes.Buffer
	c := sh("cat; echo done >&2")
	c.Stdin, c.Stdout, c.Stderr = bytes.NewReader(in), &out, &errOut
	if err := sup.Run(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Errorf("stdout: %d bytes, want the %d bytes of stdin unchanged", out.Len(), len(in))
	}
	if errOut.String() != "done\n" {
		t.Errorf("stderr = %q, want %q", errOut.String(), "done\n")
	}
}

func TestRunSameWriterForStdoutAndStderr(t *testing.T) {
	t.Parallel()
	var both bytes.Buffer // not safe for concurrent writes: one pipe must feed it
	c := sh("echo out; echo err >&2; echo out2")
	c.Stdout, c.Stderr = &both, &both
	if err := sup.Run(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if got, want := both.String(), "out\nerr\nout2\n"; got != want {
		t.Errorf("output %q, want %q in order", got, want)
	}
}

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("storage unreachable") }

func TestRunReportsAFailedOutputWriter(t *testing.T) {
	t.Parallel()
	c := Cmd{Path: "head", Args: []string{"-c", "10000000", "/dev/zero"}, Stdout: brokenWriter{}}
	err := sup.Run(t.Context(), c)
	if err == nil || !strings.Contains(err.Error(), "copy stdout: storage unreachable") {
		t.Errorf("Run = %v, want the writer's failure reported", err)
	}
}

func TestRunCancelStopsTheCommand(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := sh("echo started; exec sleep 60")
	c.Stdout = w
	go func() {
		defer cancel()
		r.SetReadDeadline(time.Now().Add(10 * time.Second))
		bufio.NewReader(r).ReadString('\n') // cancel once the child runs
	}()
	err = sup.Run(ctx, c)
	w.Close()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want it to wrap context.Canceled", err)
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Status.ExitCode() != 143 {
		t.Errorf("Run = %v, want an *ExitError killed by SIGTERM", err)
	}
}

// TestManyConcurrentRunsKeepTheirOwnExitCodes is ContainerPilot's bug: a reaper racing Wait lost
// exit statuses. Orphans reaped meanwhile must not disturb the mapping either.
func TestManyConcurrentRunsKeepTheirOwnExitCodes(t *testing.T) {
	t.Parallel()
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			script := "exit " + itoa(i%200)
			if i%2 == 1 {
				script = "true & " + script // leaves an orphan behind
			}
			errs[i] = sup.Run(t.Context(), sh(script))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if got, want := ExitCode(err), i%200; got != want {
			t.Errorf("run %d: code %d (%v), want %d", i, got, err, want)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
