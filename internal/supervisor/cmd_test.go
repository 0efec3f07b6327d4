package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name    string
		status  ExitStatus
		code    int
		success bool
		text    string
	}{
		{"exit 0 is success", ExitStatus{Code: 0}, 0, true, "exit status 0"},
		{"exit 3 keeps its code", ExitStatus{Code: 3}, 3, false, "exit status 3"},
		{"SIGKILL maps to 137", ExitStatus{Code: -1, Signal: syscall.SIGKILL}, 137, false, "killed by signal 9 (killed)"},
		{"SIGTERM maps to 143", ExitStatus{Code: -1, Signal: syscall.SIGTERM}, 143, false, "killed by signal 15 (terminated)"},
		{"codes stay within 0-255", ExitStatus{Code: 256 + 7}, 7, false, "exit status 263"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.status.ExitCode(); got != tt.code {
				t.Errorf("ExitCode() = %d, want %d", got, tt.code)
			}
			if got := tt.status.Success(); got != tt.success {
				t.Errorf("Success() = %v, want %v", got, tt.success)
			}
			if got := tt.status.String(); got != tt.text {
				t.Errorf("String() = %q, want %q", got, tt.text)
			}
		})
	}
}

func TestStatusFromWait(t *testing.T) {
	tests := []struct {
		name string
		ws   syscall.WaitStatus // the kernel's encoding: code<<8, or the signal number
		want ExitStatus
	}{
		{"exited 0", 0, ExitStatus{Code: 0}},
		{"exited 3", 3 << 8, ExitStatus{Code: 3}},
		{"killed by SIGKILL", syscall.WaitStatus(syscall.SIGKILL), ExitStatus{Code: -1, Signal: syscall.SIGKILL}},
		{"killed by SIGSEGV with core", syscall.WaitStatus(syscall.SIGSEGV) | 0x80, ExitStatus{Code: -1, Signal: syscall.SIGSEGV}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StatusFromWait(tt.ws); got != tt.want {
				t.Errorf("StatusFromWait(%#x) = %+v, want %+v", int(tt.ws), got, tt.want)
			}
		})
	}
}

func TestStartErrorCode(t *testing.T) {
	tests := []struct {
		name    string
		err     *StartError
		code    int
		message string
	}{
		{"not in PATH is 127",
			&StartError{Name: "mysqld", Op: "lookup", Err: &exec.Error{Name: "mysqld", Err: exec.ErrNotFound}},
			127, "supervisor: start mysqld: executable not found (exit 127)"},
		{"missing path is 127",
			&StartError{Name: "mysqld", Op: "lookup", Err: &exec.Error{Name: "/x/mysqld", Err: fs.ErrNotExist}},
			127, "executable not found (exit 127)"},
		{"ENOENT from execve (missing interpreter) is 127",
			&StartError{Name: "hook", Op: "exec", Err: syscall.ENOENT}, 127, "executable not found"},
		{"EACCES is 126",
			&StartError{Name: "hook", Op: "exec", Err: syscall.EACCES}, 126, "supervisor: start hook: cannot execute (exit 126)"},
		{"ENOEXEC is 126",
			&StartError{Name: "hook", Op: "exec", Err: syscall.ENOEXEC}, 126, "cannot execute (exit 126)"},
		{"a missing working directory is 126, not 127",
			&StartError{Name: "hook", Op: "chdir", Err: fs.ErrNotExist}, 126, "supervisor: start hook: chdir (exit 126)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Code(); got != tt.code {
				t.Errorf("Code() = %d, want %d", got, tt.code)
			}
			if got := ExitCode(fmt.Errorf("wrapped: %w", tt.err)); got != tt.code {
				t.Errorf("ExitCode(wrapped) = %d, want %d", got, tt.code)
			}
			if got := tt.err.Error(); !strings.Contains(got, tt.message) {
				t.Errorf("Error() = %q, want it to contain %q", got, tt.message)
			}
			if !errors.Is(tt.err, tt.err.Err) {
				t.Errorf("errors.Is(err, its cause) = false")
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil is 0", nil, 0},
		{"exit error keeps its code", &ExitError{Name: "x", Status: ExitStatus{Code: 3}}, 3},
		{"signal death is 128+signal", &ExitError{Name: "x", Status: ExitStatus{Code: -1, Signal: syscall.SIGKILL}}, 137},
		{"wrapped exit error", fmt.Errorf("ctx: %w", &ExitError{Status: ExitStatus{Code: 5}}), 5},
		{"any other error is 1", errors.New("boom"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestExitErrorMessage(t *testing.T) {
	err := &ExitError{Name: "mariabackup", Status: ExitStatus{Code: 1}, Stderr: "cannot open datadir"}
	if got, want := err.Error(), "mariabackup: exit status 1: cannot open datadir"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestCmdName(t *testing.T) {
	if got := (Cmd{Path: "/usr/sbin/mariadbd"}).name(); got != "mariadbd" {
		t.Errorf("name() = %q, want the path's base", got)
	}
	if got := (Cmd{Name: "db", Path: "/usr/sbin/mariadbd"}).name(); got != "db" {
		t.Errorf("name() = %q, want the explicit name", got)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	var tb tailBuffer
	for i := range 1000 {
		fmt.Fprintf(&tb, "line %d\n", i)
	}
	got := tb.String()
	if len(got) > tailMax {
		t.Errorf("len = %d, want at most %d", len(got), tailMax)
	}
	if !strings.HasSuffix(got, "line 999") {
		t.Errorf("tail ends %q, want the last line", got[len(got)-20:])
	}
}

func TestInterfaceEqual(t *testing.T) {
	var sb strings.Builder
	type uncomparable struct{ f func() }
	tests := []struct {
		name string
		a, b any
		want bool
	}{
		{"same pointer", &sb, &sb, true},
		{"different pointers", &sb, &strings.Builder{}, false},
		{"uncomparable values do not panic", uncomparable{}, uncomparable{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := interfaceEqual(tt.a, tt.b); got != tt.want {
				t.Errorf("interfaceEqual = %v, want %v", got, tt.want)
			}
		})
	}
}
