package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// privateServer describes a throw-away server on a restored datadir, for a restore drill or a
// point-in-time replay: no network beyond loopback, its socket in a private 0700 directory,
// run under the supervisor's Runner.
type privateServer struct {
	Name         string // "drill", "replay": in the process name, the directory and errors
	Flavor       mysql.Flavor
	Runner       supervisor.Runner
	Binary       string // the server binary
	OSUser       string // the server drops to it; "" when root (then "root")
	Datadir      string
	ServerID     uint32
	BufferPool   string   // innodb_buffer_pool_size; "" for the default
	Extra        []string // more server options
	RootPassword string
	IOTimeout    time.Duration // of the connection; 0 for the mysql package's default (30 s)
	StartTimeout time.Duration // for crash recovery and the first connection
	StopTimeout  time.Duration // for the server to stop after SHUTDOWN (a second more is given)
	Log          *slog.Logger
}

// start starts the server and connects to it as root over its socket. It returns the
// connection, the socket's path and stop, which must be called however the caller leaves:
// SHUTDOWN when connected, SIGTERM otherwise or when it does not stop in time (then SIGKILL,
// from the Runner). A server that exits before it answers is reported with its exit, at once.
func (p privateServer) start(ctx context.Context) (db *mysql.DB, socket string, stop func(), err error) {
	sockDir, err := os.MkdirTemp("", "mysqlpilot-"+p.Name+"-") // 0700; short enough for a socket path
	if err != nil {
		return nil, "", nil, localErr(err)
	}
	cleanups := []func(){func() { os.RemoveAll(sockDir) }}
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	osUser := p.OSUser
	if osUser == "" && os.Geteuid() == 0 {
		osUser = "root"
	}
	cnf := filepath.Join(sockDir, p.Name+".cnf")
	sc := mysql.ServerConfig{Flavor: p.Flavor, Datadir: p.Datadir, Socket: filepath.Join(sockDir, "mysqld.sock"),
		PidFile: filepath.Join(sockDir, "mysqld.pid"), Port: 3306, BindAddress: "127.0.0.1", ServerID: max(p.ServerID, 1),
		TmpDir: sockDir, InnoDBBufferPool: p.BufferPool, Extra: p.Extra}
	if err := mysql.WriteServerConfig(cnf, sc); err != nil {
		return nil, "", nil, localErr(err)
	}
	// The server, once it dropped to osUser, creates its socket and pid file here.
	if err := chownTree(sockDir, osUser); err != nil {
		return nil, "", nil, localErr(err)
	}
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	serverDone := make(chan error, 1)
	go func() {
		serverDone <- p.Runner.Run(srvCtx, supervisor.Cmd{Name: p.Name + " " + p.Flavor.ServerBinary(), Path: p.Binary, Args: mysql.ServerArgs(cnf, osUser)})
	}()
	var conn *mysql.DB
	cleanups = append(cleanups, func() {
		if conn != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_, _ = conn.SQL().ExecContext(sctx, "SHUTDOWN")
			cancel()
			conn.Close()
		} else {
			stopServer() // never connected: SIGTERM now
		}
		t := time.NewTimer(p.StopTimeout + time.Second)
		defer t.Stop()
		select {
		case <-serverDone:
		case <-t.C:
			p.Log.Warn("the "+p.Name+" server did not stop in time: terminating it", "datadir", p.Datadir)
			stopServer()
			<-serverDone
		}
		stopServer()
	})
	startTimeout := p.StartTimeout
	if startTimeout <= 0 {
		startTimeout = 10 * time.Minute
	}
	openCtx, cancelOpen := context.WithTimeout(ctx, startTimeout)
	defer cancelOpen()
	exited := make(chan error, 1)
	go func() {
		select {
		case err := <-serverDone:
			exited <- err
			serverDone <- err // for stop
			cancelOpen()
		case <-openCtx.Done():
		}
	}()
	conn, err = mysql.Open(openCtx, mysql.Conn{Flavor: p.Flavor, Socket: sc.Socket, User: "root", Password: p.RootPassword,
		PasswordSource: "MYSQL_ROOT_PASSWORD", MaxOpen: 2, IOTimeout: p.IOTimeout})
	if err != nil {
		conn = nil
		select {
		case srvErr := <-exited:
			if srvErr == nil {
				srvErr = errors.New("it exited with status 0 before it answered")
			}
			return nil, "", nil, fmt.Errorf("the %s server did not start on the restored datadir: %w", p.Name, srvErr)
		default:
		}
		return nil, "", nil, fmt.Errorf("connect to the %s server: %w", p.Name, err)
	}
	cancelOpen() // the watcher above must not take the server's exit from here on
	var once sync.Once
	return conn, sc.Socket, func() { once.Do(cleanup) }, nil
}
