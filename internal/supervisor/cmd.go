package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Cmd describes a command to run: a backup tool, a hook, mysqld itself.
// Secrets must travel in Env or in files, never in Args (Args are visible in ps).
type Cmd struct {
	Name   string   // short name for logs and metrics, e.g. "mariabackup"; defaults to Path's base
	Path   string   // executable; looked up in PATH when it has no slash
	Args   []string // arguments, without argv[0]
	Env    []string // full environment ("K=V"); nil means the supervisor's own environment
	Dir    string   // working directory; "" means the current one
	Stdin  io.Reader
	Stdout io.Writer // nil discards
	Stderr io.Writer // nil discards
}

// name is the command's name for logs, metrics and errors.
func (c Cmd) name() string {
	if c.Name != "" {
		return c.Name
	}
	return filepath.Base(c.Path)
}

// Runner runs commands to completion. *Supervisor implements it so that its one reaper stays
// the only caller of wait4; ExecRunner implements it with os/exec for code and tests that run
// without a supervisor.
type Runner interface {
	// Run starts c and waits for it. A non-zero exit returns an *ExitError. Cancelling ctx sends
	// SIGTERM to the command's process group, then SIGKILL after a grace period.
	Run(ctx context.Context, c Cmd) error
}

// ExitError reports a command that ran and did not exit 0.
type ExitError struct {
	Name   string     // the command's name
	Status ExitStatus // how it ended
	Stderr string     // the tail of stderr when the caller did not capture it, for the error message
}

// Error says which command ended how, with the tail of its stderr when there is one.
func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: %s", e.Name, e.Status)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Exit codes for a command that could not be started, as shells and tini report them.
const (
	CodeCannotExecute = 126 // found but not executable (EACCES, ENOEXEC, ...), or another start failure
	CodeNotFound      = 127 // no such executable (ENOENT)
)

// StartError reports a command that could not be started: its executable is missing or not
// executable, or the plumbing around it (pipes, /dev/null, working directory) failed.
type StartError struct {
	Name string // the command's name
	Op   string // the step that failed: "lookup", "exec", "chdir", "pipe", "open /dev/null"
	Err  error
}

// Code maps the failure onto a shell-style exit code: 127 when the executable was not found,
// 126 otherwise.
func (e *StartError) Code() int {
	if (e.Op == "lookup" || e.Op == "exec") &&
		(errors.Is(e.Err, exec.ErrNotFound) || errors.Is(e.Err, fs.ErrNotExist) || errors.Is(e.Err, syscall.ENOTDIR)) {
		return CodeNotFound
	}
	return CodeCannotExecute
}

// Error says which command failed to start, why, and the exit code that stands for it.
func (e *StartError) Error() string {
	what := e.Op
	switch {
	case e.Code() == CodeNotFound:
		what = "executable not found"
	case e.Op == "lookup" || e.Op == "exec":
		what = "cannot execute"
	}
	return fmt.Sprintf("supervisor: start %s: %s (exit %d): %v", e.Name, what, e.Code(), e.Err)
}

// Unwrap returns the cause, e.g. exec.ErrNotFound or syscall.EACCES.
func (e *StartError) Unwrap() error { return e.Err }

// ExitCode maps the result of Run onto the code a shell would report: 0 for nil, the child's
// code or 128+signal for an *ExitError, 127 or 126 for a *StartError, and 1 for anything else.
func ExitCode(err error) int {
	var ee *ExitError
	var se *StartError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Status.ExitCode()
	case errors.As(err, &se):
		return se.Code()
	default:
		return 1
	}
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	Code   int            // exit code when it exited; -1 when killed by a signal
	Signal syscall.Signal // the signal that killed it, or 0
}

// ExitCode maps the status onto a shell-style code: the exit code, or 128+signal.
func (s ExitStatus) ExitCode() int {
	if s.Signal != 0 {
		return 128 + int(s.Signal)
	}
	return s.Code & 0xff
}

// Success reports whether the process exited 0.
func (s ExitStatus) Success() bool { return s.Signal == 0 && s.Code == 0 }

// String reads "exit status 3" or "killed by signal 9 (killed)".
func (s ExitStatus) String() string {
	if s.Signal != 0 {
		return fmt.Sprintf("killed by signal %d (%s)", int(s.Signal), s.Signal)
	}
	return fmt.Sprintf("exit status %d", s.Code)
}

// StatusFromWait converts a wait status.
func StatusFromWait(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Code: -1, Signal: ws.Signal()}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

// ExecRunner runs commands with os/exec. Use it only where no Supervisor reaps the process
// (unit and integration tests of other packages, CLI subcommands): while a Supervisor runs, its
// reaper takes every child's exit status and os/exec's Wait fails with ECHILD.
//
// Env is the environment of a command without its own (Cmd.Env nil); nil means ours without
// the variables named as secrets (ScrubEnv): a CLI subcommand run by `docker exec` has them all.
type ExecRunner struct {
	Env []string
}

// Run implements Runner with os/exec.
func (r ExecRunner) Run(ctx context.Context, c Cmd) error {
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	if cmd.Env == nil {
		cmd.Env = r.Env
	}
	if cmd.Env == nil {
		cmd.Env = ScrubEnv(os.Environ(), nil)
	}
	cmd.Stdin, cmd.Stdout = c.Stdin, c.Stdout
	var tail tailBuffer
	if c.Stderr != nil {
		cmd.Stderr = c.Stderr
	} else {
		cmd.Stderr = &tail
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = gracePeriod
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws, _ := ee.Sys().(syscall.WaitStatus)
		return &ExitError{Name: c.name(), Status: StatusFromWait(ws), Stderr: tail.String()}
	}
	if err != nil && cmd.Process == nil {
		return &StartError{Name: c.name(), Op: "exec", Err: err}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", c.name(), err)
	}
	return nil
}
