package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// MariaDBOptions configure StartMariaDB.
type MariaDBOptions struct {
	// ServerID must differ between servers that replicate; default 1.
	ServerID int
	// RootPassword, when set, is given to root (with BootstrapLocal: not binlogged) after the
	// first start; RootDB logs in with it. Default: no password.
	RootPassword string
	// Config adjusts the generated server config before it is written.
	Config func(*mysql.ServerConfig)
	// ReadyTimeout bounds each start; default 60s.
	ReadyTimeout time.Duration
}

// MariaDB is a real mariadbd on 127.0.0.1 with its datadir in a test's temporary directory,
// configured and initialized by internal/mysql (so the harness exercises that code too).
type MariaDB struct {
	t       testing.TB
	opts    MariaDBOptions
	bin     string
	dir     string // datadir's parent: config, logs
	datadir string
	socket  string
	port    int
	cnf     string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	log  *lockedBuffer
}

// StartMariaDB initializes a datadir, starts mariadbd and waits until it accepts logins. The
// server stops (SIGTERM, then SIGKILL) when the test ends; on failure the test log gets the
// tail of the server's output.
func StartMariaDB(t testing.TB, o MariaDBOptions) *MariaDB {
	t.Helper()
	if o.ServerID == 0 {
		o.ServerID = 1
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	bin := Tool(t, "mariadbd", "apt-get install mariadb-server")
	installer := Tool(t, "mariadb-install-db", "apt-get install mariadb-server")
	dir := t.TempDir()
	// Unix socket paths are limited to 107 bytes; test temp dirs can be longer.
	sockDir, err := os.MkdirTemp("", "mdb")
	if err != nil {
		t.Fatalf("harness: socket dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	m := &MariaDB{
		t: t, opts: o, bin: bin, dir: dir,
		datadir: filepath.Join(dir, "data"),
		socket:  filepath.Join(sockDir, "mysqld.sock"),
		port:    FreePort(t),
		cnf:     filepath.Join(dir, "my.cnf"),
		log:     &lockedBuffer{},
	}
	cfg := mysql.ServerConfig{
		Flavor:      mysql.MariaDB,
		Datadir:     m.datadir,
		Socket:      m.socket,
		PidFile:     filepath.Join(dir, "mysqld.pid"),
		Port:        m.port,
		BindAddress: "127.0.0.1",
		ServerID:    uint32(o.ServerID),
		ReportHost:  "127.0.0.1",
		// Small for tests: many servers share two cores and little memory.
		InnoDBBufferPool: "32M",
		Extra:            []string{"innodb_log_file_size = 16M", "performance_schema = OFF"},
		// Its own: servers sharing a tmpdir delete each other's temporary tables at start.
		TmpDir: filepath.Join(dir, "tmp"),
	}
	if o.Config != nil {
		o.Config(&cfg)
	}
	if err := mysql.WriteServerConfig(m.cnf, cfg); err != nil {
		t.Fatalf("harness: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.ReadyTimeout)
	defer cancel()
	var initOut bytes.Buffer
	err = mysql.InitDatadir(ctx, supervisor.ExecRunner{}, mysql.MariaDB, m.datadir, mysql.InitOptions{
		Installer: installer, OSUser: currentOSUser(), Stdout: &initOut, Stderr: &initOut, TmpDir: cfg.TmpDir,
	})
	if err != nil {
		t.Fatalf("harness: %v\n%s", err, initOut.String())
	}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("harness: mariadbd (server %d) output, last 4 KiB:\n%s", o.ServerID, m.log.tail(4096))
		}
	})
	m.Start()
	if o.RootPassword != "" {
		db := m.open(t, "")
		defer db.Close()
		if err := db.BootstrapLocal(ctx, mysql.Users{RootPassword: o.RootPassword}); err != nil {
			t.Fatalf("harness: set root password: %v", err)
		}
	}
	return m
}

// currentOSUser is the --user for mariadbd: root must name itself explicitly.
func currentOSUser() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	return ""
}

// Start starts the server on its datadir and waits until it accepts logins. It fails the
// test when the server is running already or does not come up.
func (m *MariaDB) Start() {
	m.t.Helper()
	m.mu.Lock()
	if m.cmd != nil {
		m.mu.Unlock()
		m.t.Fatalf("harness: mariadbd (server %d) is already running", m.opts.ServerID)
	}
	cmd := exec.Command(m.bin, mysql.ServerArgs(m.cnf, currentOSUser())...)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Fprintf(m.log, "--- harness: starting %s %v\n", m.bin, cmd.Args[1:])
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		m.t.Fatalf("harness: start mariadbd: %v", err)
	}
	done := make(chan struct{})
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(m.log, "--- harness: mariadbd exited: %v\n", err)
		close(done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), m.opts.ReadyTimeout)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 500*time.Millisecond)
		db, err := mysql.Open(actx, mysql.Conn{Flavor: mysql.MariaDB, Socket: m.socket, Password: "", Timeout: time.Second})
		acancel()
		if err == nil || errors.Is(err, mysql.ErrAccessDenied) {
			// Accepting logins (a set root password is still a live server).
			if db != nil {
				_ = db.Close()
			}
			return
		}
		select {
		case <-done:
			m.t.Fatalf("harness: mariadbd (server %d) exited during start-up:\n%s", m.opts.ServerID, m.log.tail(4096))
		case <-ctx.Done():
			m.t.Fatalf("harness: mariadbd (server %d) not ready within %s: %v\n%s", m.opts.ServerID, m.opts.ReadyTimeout, err, m.log.tail(4096))
		default:
		}
	}
}

// Stop sends SIGTERM and waits for the server to exit, sending SIGKILL after 30s. Stopping a
// stopped server does nothing.
func (m *MariaDB) Stop() { m.stop(syscall.SIGTERM, 30*time.Second) }

// Kill ends the server with SIGKILL (a crash) and waits for it.
func (m *MariaDB) Kill() { m.stop(syscall.SIGKILL, 0) }

func (m *MariaDB) stop(sig syscall.Signal, grace time.Duration) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd, m.done = nil, nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	// A paused server cannot act on SIGTERM.
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
			return
		case <-t.C:
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	<-done
}

// Pause freezes the server (SIGSTOP) and returns once it is stopped: connections stay open,
// nothing answers.
func (m *MariaDB) Pause() {
	m.t.Helper()
	pid := m.signal(syscall.SIGSTOP)
	deadline := time.Now().Add(5 * time.Second)
	for procState(pid) != 'T' {
		if time.Now().After(deadline) {
			m.t.Fatalf("harness: mariadbd (server %d) did not stop on SIGSTOP", m.opts.ServerID)
		}
		time.Sleep(time.Millisecond) // polling the kernel's process state; nothing to wait on
	}
}

// procState is the state letter in /proc/<pid>/stat ('T' stopped), or 0.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// Resume continues a paused server (SIGCONT).
func (m *MariaDB) Resume() { m.t.Helper(); m.signal(syscall.SIGCONT) }

func (m *MariaDB) signal(sig syscall.Signal) int {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		m.t.Fatalf("harness: mariadbd (server %d) is not running", m.opts.ServerID)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		m.t.Fatalf("harness: signal mariadbd: %v", err)
	}
	return m.cmd.Process.Pid
}

// Addr is the server's TCP address, 127.0.0.1:port.
func (m *MariaDB) Addr() string { return Addr(m.port) }

// Port is the server's TCP port.
func (m *MariaDB) Port() int { return m.port }

// Socket is the server's unix socket path.
func (m *MariaDB) Socket() string { return m.socket }

// Datadir is the server's data directory.
func (m *MariaDB) Datadir() string { return m.datadir }

// ConfigFile is the option file the server runs with.
func (m *MariaDB) ConfigFile() string { return m.cnf }

// ServerID is the server's server_id.
func (m *MariaDB) ServerID() int { return m.opts.ServerID }

// Output returns the server's output so far (stdout and stderr, across restarts).
func (m *MariaDB) Output() string { return m.log.tail(1 << 20) }

// RootDB opens a pool as root over the socket (with MariaDBOptions.RootPassword), closed when
// the test ends.
func (m *MariaDB) RootDB(t testing.TB) *mysql.DB {
	t.Helper()
	db := m.open(t, m.opts.RootPassword)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func (m *MariaDB) open(t testing.TB, password string) *mysql.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.ReadyTimeout)
	defer cancel()
	db, err := mysql.Open(ctx, mysql.Conn{Flavor: mysql.MariaDB, Socket: m.socket, Password: password})
	if err != nil {
		t.Fatalf("harness: open root connection to server %d: %v", m.opts.ServerID, err)
	}
	return db
}

// lockedBuffer collects a process's output for failure reports.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.Bytes()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return string(s)
}
