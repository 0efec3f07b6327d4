//go:build integration

package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestSuperviseReturnsMainsCode(t *testing.T) {
	for _, tt := range []struct {
		name string
		cmd  Cmd
		code int
	}{
		{"exit 7", sh("exit 7"), 7},
		{"killed by a signal", sh("kill -KILL $$"), 137},
		{"missing executable", Cmd{Path: "mysqlpilot-no-such-binary"}, 127},
	} {
		t.Run(tt.name, func(t *testing.T) {
			postStop := false
			code := sup.Supervise(t.Context(), tt.cmd, SuperviseOptions{PostStop: func(context.Context) { postStop = true }})
			if code != tt.code {
				t.Errorf("Supervise = %d, want %d", code, tt.code)
			}
			if !postStop {
				t.Error("PostStop did not run")
			}
		})
	}
}

func TestSuperviseContextEndRunsTheStopSequence(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	ready := filepath.Join(t.TempDir(), "ready")
	var mu sync.Mutex
	var events []string
	record := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	go func() {
		waitFile(t, ready)
		cancel()
	}()
	code := sup.Supervise(ctx, Cmd{Path: "sh", Args: []string{"-c", `: > "$0"; exec sleep 60`, ready}}, SuperviseOptions{
		PreStop: func(context.Context) error {
			if _, err := os.Stat(ready); err != nil {
				return errors.New("main not running during pre-stop")
			}
			record("pre-stop")
			return nil
		},
		PostStop: func(context.Context) { record("post-stop") },
	})
	if code != 143 {
		t.Errorf("Supervise = %d, want 143 (SIGTERM)", code)
	}
	if want := []string{"pre-stop", "post-stop"}; !slices.Equal(events, want) {
		t.Errorf("hooks ran %q, want %q", events, want)
	}
}

// TestSupervisedBinary builds testdata/supervise, a main calling Supervise as `mysqlpilot
// supervise` does, and checks the contract on the real process, as dumb-init's tests do.
func TestSupervisedBinary(t *testing.T) {
	bin := supervisedBinary(t)
	run := func(t *testing.T, args ...string) (*Process, *lineReader) {
		t.Helper()
		return startReading(t, Cmd{Path: bin, Args: args, Stderr: &testLog{t: t}})
	}
	exitCodes := []struct {
		name string
		args []string
		code int
	}{
		{"exit code passes through", []string{"--", "sh", "-c", "exit 5"}, 5},
		{"exit 0", []string{"--", "true"}, 0},
		{"death by signal is 128+signal", []string{"--", "sh", "-c", "kill -KILL $$"}, 137},
		{"missing executable is 127", []string{"--", "mysqlpilot-no-such-binary"}, 127},
	}
	for _, tt := range exitCodes {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, _ := run(t, tt.args...)
			if st := waitDone(t, p); st.ExitCode() != tt.code {
				t.Errorf("supervise exited %v, want code %d", st, tt.code)
			}
		})
	}
	signals := []struct {
		name   string
		args   []string
		signal syscall.Signal
		code   int
	}{
		{"SIGTERM stops the child", []string{"--", "sh", "-c", "echo ready; exec sleep 60"}, syscall.SIGTERM, 143},
		{"SIGINT stops the child with the stop signal", []string{"--", "sh", "-c", "echo ready; exec sleep 60"}, syscall.SIGINT, 143},
		{"SIGUSR1 is forwarded", []string{"--", "sh", "-c", `trap "exit 42" USR1; echo ready; sleep 60 & wait`}, syscall.SIGUSR1, 42},
		{"SIGHUP is forwarded", []string{"--", "sh", "-c", `trap "exit 43" HUP; echo ready; sleep 60 & wait`}, syscall.SIGHUP, 43},
		{"a child trapping TERM is killed after the stop timeout",
			[]string{"-stop-timeout", "200ms", "--", "sh", "-c", `trap "" TERM; echo ready; exec sleep 60`}, syscall.SIGTERM, 137},
	}
	for _, tt := range signals {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, out := run(t, tt.args...)
			if got := out.line(); got != "ready" {
				t.Fatalf("got %q, want ready", got)
			}
			if err := syscall.Kill(p.Pid(), tt.signal); err != nil {
				t.Fatal(err)
			}
			if st := waitDone(t, p); st.ExitCode() != tt.code {
				t.Errorf("supervise exited %v, want code %d", st, tt.code)
			}
		})
	}
	t.Run("the rest of main's group is terminated when main exits", func(t *testing.T) {
		t.Parallel()
		p, out := run(t, "--", "sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!; exit 0")
		grandchild := out.pid()
		if st := waitDone(t, p); !st.Success() {
			t.Errorf("supervise exited %v, want 0", st)
		}
		waitGone(t, grandchild)
	})
}

var buildOnce struct {
	sync.Once
	bin string
	err error
}

// supervisedBinary builds testdata/supervise once per test process. The build runs through sup,
// like every child here: os/exec's Wait would race the reaper.
func supervisedBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		bin := filepath.Join(scratchDir, "supervise")
		var stderr strings.Builder
		buildOnce.err = sup.Run(context.Background(), Cmd{
			Path: goTool(), Args: []string{"build", "-o", bin, "./testdata/supervise"}, Stderr: &stderr,
		})
		if buildOnce.err != nil {
			buildOnce.err = errors.Join(buildOnce.err, errors.New(stderr.String()))
		}
		buildOnce.bin = bin
	})
	if buildOnce.err != nil {
		t.Fatalf("build testdata/supervise: %v", buildOnce.err)
	}
	return buildOnce.bin
}

// goTool finds the go command that runs this test.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// testLog sends a child's stderr to the test log, shown when the test fails or with -v.
type testLog struct {
	t  *testing.T
	mu sync.Mutex
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
