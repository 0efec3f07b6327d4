//go:build integration

package supervisor

import (
	"bufio"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sup is the one Supervisor of this test process: wait4(-1) is process-wide, so every test that
// spawns children shares it, and New refuses a second one.
var sup *Supervisor

// scratchDir outlives single tests (the supervise binary is built once per process).
var scratchDir string

func TestMain(m *testing.M) {
	flag.Parse()
	handler := slog.DiscardHandler // the failure paths under test log on purpose; -v shows them
	if testing.Verbose() {
		handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	var err error
	if scratchDir, err = os.MkdirTemp("", "supervisor-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sup = New(slog.New(handler))
	code := m.Run()
	os.RemoveAll(scratchDir)
	if code == 0 {
		if z := waitNoZombies(10 * time.Second); len(z) > 0 {
			fmt.Fprintf(os.Stderr, "zombie children left unreaped: %v\n", z)
			code = 1
		}
	}
	if err := sup.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// waitNoZombies waits until no child of ours is a zombie, and returns those that remain.
func waitNoZombies(limit time.Duration) []int {
	deadline := time.Now().Add(limit)
	for {
		z := zombieChildren()
		if len(z) == 0 || time.Now().After(deadline) {
			return z
		}
		time.Sleep(10 * time.Millisecond) // polling /proc: there is no event to wait on
	}
}

func zombieChildren() []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid, ok := procStat(pid); ok && state == "Z" && ppid == os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}

// procStat reads a process's state and parent from /proc/<pid>/stat.
func procStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, false
	}
	// "pid (comm) state ppid ...": comm may hold spaces, so split after its closing paren.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid, true
}

// waitGone waits until pid no longer exists, i.e. it exited and was reaped.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			state, ppid, _ := procStat(pid)
			t.Fatalf("pid %d still exists after 10s (state %s, ppid %d)", pid, state, ppid)
		}
		time.Sleep(5 * time.Millisecond) // polling /proc: there is no event to wait on
	}
}

// startReading starts c with its stdout on a pipe (passed as an *os.File) and returns a
// line reader over the pipe's other end.
func startReading(t *testing.T, c Cmd) (*Process, *lineReader) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stdout = w
	p, err := sup.Start(c)
	w.Close() // the child holds its own copy; ours would hide EOF
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		if p.Signal(syscall.SIGKILL) == nil { // a failed test's leftover
			<-p.Done()
		}
	})
	return p, &lineReader{t: t, f: r, br: bufio.NewReader(r)}
}

type lineReader struct {
	t  *testing.T
	f  *os.File
	br *bufio.Reader
}

// line reads one line, failing the test after 10s.
func (lr *lineReader) line() string {
	lr.t.Helper()
	lr.f.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := lr.br.ReadString('\n')
	if err != nil {
		lr.t.Fatalf("read a line: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

func (lr *lineReader) pid() int {
	lr.t.Helper()
	s := lr.line()
	pid, err := strconv.Atoi(s)
	if err != nil {
		lr.t.Fatalf("want a pid, got %q", s)
	}
	return pid
}

func waitDone(t *testing.T, p *Process) ExitStatus {
	t.Helper()
	select {
	case <-p.Done():
		return p.Status()
	case <-time.After(30 * time.Second):
		t.Fatalf("%s (pid %d) not done after 30s", p.Name(), p.Pid())
		return ExitStatus{}
	}
}

func sh(script string) Cmd { return Cmd{Path: "sh", Args: []string{"-c", script}} }
