//go:build integration

package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestJobOnFailureRestartsUntilSuccess(t *testing.T) {
	t.Parallel()
	counter := filepath.Join(t.TempDir(), "runs")
	// Fails on its first two runs, succeeds on the third.
	job := Job{
		Name:         "flaky-" + t.Name(),
		Cmd:          sh(`n=$(cat "$0" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$0"; [ $n -ge 3 ]`),
		Restart:      RestartOnFailure,
		RestartDelay: 10 * time.Millisecond,
	}
	job.Cmd.Args = append(job.Cmd.Args, counter)
	before := sup.Stats().Jobs[job.Name] // counters add up over -count runs
	if err := sup.RunJob(t.Context(), job); err != nil {
		t.Fatalf("RunJob = %v, want nil after the successful run", err)
	}
	b, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "3" {
		t.Errorf("ran %s times, want 3: on-failure must stop after success", got)
	}
	js := sup.Stats().Jobs[job.Name]
	if js.Starts-before.Starts != 3 || js.Restarts-before.Restarts != 2 || js.Running || !js.LastExit.Success() {
		t.Errorf("JobStats = %+v, want 3 starts, 2 restarts, stopped, last exit 0", js)
	}
}

func TestJobNeverReturnsTheFailure(t *testing.T) {
	t.Parallel()
	err := sup.RunJob(t.Context(), Job{Name: "once", Cmd: sh("echo broken >&2; exit 4"), Restart: RestartNever})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Status.Code != 4 || ee.Stderr != "broken" {
		t.Errorf("RunJob = %v, want the *ExitError with exit 4 and stderr's tail", err)
	}
	if !strings.Contains(err.Error(), "supervisor: job once:") {
		t.Errorf("error %q, want it to name the job", err)
	}
}

func TestJobStopsOnContextEndEscalatingToSIGKILL(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := filepath.Join(t.TempDir(), "ready")
	job := Job{
		Name:        "stubborn-" + t.Name(),
		Cmd:         sh(`trap "" TERM; : > "$0"; exec sleep 60`),
		Restart:     RestartAlways,
		StopTimeout: 100 * time.Millisecond,
	}
	job.Cmd.Args = append(job.Cmd.Args, ready)
	before := sup.Stats().Jobs[job.Name]
	result := make(chan error, 1)
	go func() { result <- sup.RunJob(ctx, job) }()
	waitFile(t, ready)
	cancel()
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("RunJob = %v, want nil: a requested stop is not a failure", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("RunJob did not return after cancel")
	}
	js := sup.Stats().Jobs[job.Name]
	if js.LastExit.Signal != syscall.SIGKILL || js.Restarts != before.Restarts || js.Running {
		t.Errorf("JobStats = %+v, want killed by SIGKILL after StopTimeout, no restart", js)
	}
}

func TestRunJobsRunsAllAndJoinsErrors(t *testing.T) {
	t.Parallel()
	err := sup.RunJobs(t.Context(),
		Job{Name: "ok", Cmd: Cmd{Path: "true"}},
		Job{Name: "bad", Cmd: Cmd{Path: "false"}},
	)
	if err == nil || !strings.Contains(err.Error(), "job bad") || strings.Contains(err.Error(), "job ok") {
		t.Errorf("RunJobs = %v, want only job bad's failure", err)
	}
}

// waitFile waits until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not created after 10s", path)
		}
		time.Sleep(5 * time.Millisecond) // polling the file system: there is no event to wait on
	}
}
