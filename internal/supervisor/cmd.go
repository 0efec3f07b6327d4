package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
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
	Name   string
	Status ExitStatus
	Stderr string // the tail of stderr when the caller did not capture it, for the error message
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: %s", e.Name, e.Status)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
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
// (unit and integration tests of other packages, CLI subcommands).
type ExecRunner struct{}

func (ExecRunner) Run(ctx context.Context, c Cmd) error {
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
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
	name := c.Name
	if name == "" {
		name = c.Path
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws, _ := ee.Sys().(syscall.WaitStatus)
		return &ExitError{Name: name, Status: StatusFromWait(ws), Stderr: tail.String()}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
